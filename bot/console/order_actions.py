"""The agent's order actions on a ticket: opening a return for the shopper on one of their
orders, under the same rules the bot applies (bot.orders.eligibility), and noting a refund the
agent made. Both are written into the ticket's internal notes. The request helpers (the
agent, the JSON body, the ticket the agent owns) are bot.console.app's, imported where they are used
because app imports this module for its route table."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Dict, List, Optional

import redis.asyncio as aioredis
from aiohttp import web

from bot.console.views import return_view
from bot.handoff.tickets import now
from bot.orders.client import NewReturn
from bot.orders.eligibility import assess, condition_checks
from bot.orders.models import SHANGHAI, ReturnReason, to_dict

RETURN_KINDS = {"return": "退货", "exchange": "换货", "refund_only": "仅退款"}
REFUND_MAX = 100000
REFUND_NOTE_CHARS = 200
REFUNDS_KEY = "xb:console:refunds:{}"


def order_kind(wanted: str, decided: Optional[str]) -> Optional[str]:
    """The order system's kind for what the agent chose, given what the rules allow
    (bot.orders.eligibility); None when the rules do not allow that choice."""
    if decided in ("cancel", "intercept"):  # not delivered yet: cancelling or intercepting refunds
        return decided
    if wanted == "return":
        return decided if decided == "return" else None
    if wanted == "exchange":
        return "redeliver" if decided == "redeliver" else "exchange_or_repair"
    return None  # 仅退款 of delivered goods is not a kind the order system has


def refused_text(wanted: str, decisions: list) -> str:
    """Why the agent's return was refused, in the rules' own words."""
    reasons = [d.explanation for d in decisions if not d.allowed]
    if reasons:
        return "不能提交：" + " ".join(reasons)
    if wanted == "refund_only":
        return "已签收的商品不能仅退款，请选择退货或换货（顾客寄回后退款）"
    return f"该订单现在不能{RETURN_KINDS[wanted]}：" + " ".join(d.explanation for d in decisions)


async def api_open_return(request: web.Request) -> web.Response:
    """Opens a return for the ticket's shopper, on one of their orders, under the same rules the
    bot applies (bot.orders.eligibility.assess); the result is noted on the ticket."""
    from bot.console.app import SERVICES, bad_request, current_agent, json_body, json_error, owned

    ticket, services = await owned(request), request.app[SERVICES]
    body = await json_body(request)
    wanted, reason = str(body.get("kind", "")), str(body.get("reason", ""))
    if wanted not in RETURN_KINDS:
        raise bad_request("请选择售后类型（退货、换货或仅退款）")
    if reason not in ReturnReason.ALL:
        raise bad_request("请选择售后原因")
    order = await services.orders.order(str(body.get("order_id", "")))
    # The shopper's own orders; a guest's, only the order the bot verified for the ticket.
    if order is None or not ((ticket.customer and order.customer_id == ticket.customer)
                             or (ticket.order_id and order.order_id == ticket.order_id)):
        return json_error(404, "找不到该顾客的这个订单")
    item_ids = body.get("item_ids")
    if not isinstance(item_ids, list) or not item_ids or any(order.item(str(i)) is None for i in item_ids):
        raise bad_request("请选择这个订单里要售后的商品")
    item_ids = list(dict.fromkeys(str(i) for i in item_ids))
    today = dt.datetime.now(SHANGHAI).date()
    decisions = []
    for item_id in item_ids:
        item = order.item(item_id)
        # 完好 as the agent confirmed with the shopper (the bot asks the same questions).
        condition = {key: True for key in condition_checks(item)} if body.get("intact") is True else {}
        decisions.append(assess(order, item, reason, today, condition))
    kinds = {order_kind(wanted, d.kind) for d in decisions if d.allowed}
    if not all(d.allowed for d in decisions) or None in kinds or len(kinds) != 1:
        return web.json_response({"ok": False, "error": refused_text(wanted, decisions)}, status=409)
    request_ = NewReturn(order_id=order.order_id, customer_id=order.customer_id, item_ids=tuple(item_ids),
                         reason=reason, kind=kinds.pop(), description="客服代顾客提交")
    created_return, created = await services.orders.create_return(request_)
    view = return_view(to_dict(created_return))
    agent = await current_agent(request)
    names = "、".join(order.item(i).name for i in item_ids)
    await services.tickets.add_note(ticket.id, agent, f"为顾客{'提交' if created else '查到已有'}售后申请 "
                                    f"{created_return.return_id}：订单 {order.order_id} · {names} · {view['kind_label']}")
    message = (f"已提交售后申请 {created_return.return_id}（{view['kind_label']}）" if created
               else f"这些商品已有售后申请 {created_return.return_id}（{view['kind_label']}），未重复提交")
    return web.json_response({"ok": True, "created": created, "return": view, "message": message,
                              "explanation": decisions[0].explanation})


async def refunds_of(redis: aioredis.Redis, ticket_id: str) -> List[Dict[str, Any]]:
    return [json.loads(r) for r in await redis.lrange(REFUNDS_KEY.format(ticket_id), 0, 99)]


async def api_note_refund(request: web.Request) -> web.Response:
    """Notes a refund the agent made (amount and a note) on the ticket: kept with it and shown
    beside the transcript, and written into the ticket's internal notes."""
    from bot.console.app import SERVICES, bad_request, current_agent, json_body, owned

    ticket, services = await owned(request), request.app[SERVICES]
    body = await json_body(request)
    try:
        amount = round(float(str(body.get("amount", "")).strip()), 2)
    except ValueError:
        raise bad_request("请填写退款金额（元）")
    if not 0 < amount <= REFUND_MAX:
        raise bad_request(f"退款金额需要大于0且不超过{REFUND_MAX}元")
    note = str(body.get("note", "") if isinstance(body.get("note", ""), str) else "").strip()
    if len(note) > REFUND_NOTE_CHARS:
        raise bad_request(f"说明最多{REFUND_NOTE_CHARS}个字")
    agent = await current_agent(request)
    entry = {"amount": amount, "note": note, "agent": agent, "at": now().isoformat()}
    await services.redis.rpush(REFUNDS_KEY.format(ticket.id), json.dumps(entry, ensure_ascii=False))
    await services.tickets.add_note(ticket.id, agent, f"记录退款 ¥{amount:.2f}" + (f"：{note}" if note else ""))
    return web.json_response({"ok": True, "refund": entry})



def routes() -> List[web.RouteDef]:
    """This module's part of the console's route table (bot.console.app.create_app)."""
    return [web.post("/api/tickets/{ticket_id}/returns", api_open_return),
            web.post("/api/tickets/{ticket_id}/refunds", api_note_refund)]
