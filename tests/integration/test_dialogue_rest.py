"""Issue 16's dialogue over REST (what a WeChat or REST client gets): order choices as text buttons
next to the order cards, forged and stale button payloads refused, questions answered first, the
queue's handoff_status payload, the survey's answers on the ticket, and ticket lookups that reveal
nothing about someone else's ticket."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import uuid

import pytest

from bot.handoff.tickets import TicketStore
from bot.identity import sign_customer_token
from bot.orders.demo import demo_orders
from bot.orders.models import SHANGHAI
from bot.rasa_api import RasaApi
from tests.integration.conftest import SIGNING_SECRET, matches_response, stored_open_ticket

pytestmark = pytest.mark.integration


def orders():
    return {o.order_id[-2:]: o for o in demo_orders(dt.datetime.now(SHANGHAI).date())}


class Shopper:
    def __init__(self, stack, customer=None):
        self.stack, self.sender = stack, f"dialogue-{uuid.uuid4().hex[:10]}"
        self.metadata = {"customer_token": sign_customer_token(customer, SIGNING_SECRET)} if customer else None

    def say(self, text):
        return self.stack.send(self.sender, text, metadata=self.metadata)

    def texts(self, text):
        return "\n".join(m.get("text", "") for m in self.say(text))


def inform(**entities):
    return "/inform" + json.dumps(entities, ensure_ascii=False)


def customs(replies, kind):
    return [m["custom"] for m in replies if (m.get("custom") or {}).get("type") == kind]


def test_the_order_question_has_cards_and_the_same_choices_as_buttons(stack):
    shopper = Shopper(stack, "c1001")
    replies = shopper.say("我要退货")
    (cards,) = customs(replies, "order_cards")
    buttons = [b["payload"] for m in replies for b in m.get("buttons", [])]
    assert [c["payload"] for c in cards["orders"]] == buttons
    assert {c["order_id"] for c in cards["orders"]} <= {o.order_id for o in orders().values() if o.customer_id == "c1001"}
    assert not any(c["status"] == "unpaid" for c in cards["orders"])


def test_naming_an_item_picks_its_order_and_never_shows_another_orders_items(stack):
    shopper = Shopper(stack, "c1001")
    shopper.say("我的快递到哪了")
    shopper.say("/order_status" + inform(order_id=orders()["16"].order_id)[len("/inform"):])
    replies = shopper.texts("耳机也想退")
    assert "羽绒服" not in replies and "围巾" not in replies  # nothing of the parcel just tracked
    assert "退货的原因" in replies  # the headphones' order, the headphones picked: the reason is next


def test_forged_payloads_are_refused_and_the_question_is_asked_again(stack):
    shopper = Shopper(stack, "c1001")
    shopper.say("我要退货")
    shopper.say(inform(order_id=orders()["11"].order_id))
    for forged in ("/affirm", inform(item_id="i9"), inform(order_id=orders()["21"].order_id), "/deny"):
        replies = shopper.say(forged)
        assert matches_response(replies[0]["text"], "utter_button_expired"), forged
        assert matches_response(replies[-1]["text"], "utter_ask_pick_items"), forged
    assert "退货的原因" in shopper.texts("连衣裙")  # the form goes on with the real answer


def test_a_stale_confirm_after_the_form_is_refused_not_明白了(stack):
    shopper = Shopper(stack, "c1001")
    for payload in ("/affirm", "/deny", "/stop", inform(order_id=orders()["11"].order_id)):
        (reply,) = shopper.say(payload)
        assert matches_response(reply["text"], "utter_button_expired"), payload
    (typed,) = shopper.say("好的")
    assert not matches_response(typed["text"], "utter_button_expired")  # words are never "a button"


def test_a_question_is_answered_before_any_form(stack):
    shopper = Shopper(stack)
    replies = shopper.say("收到5天了能退吗")
    texts = "\n".join(m.get("text", "") for m in replies)
    assert customs(replies, "rights_answer") and "需要我帮您申请吗" in texts and "订单号" not in texts
    offer = next(m for m in replies if "需要我帮您申请吗" in m.get("text", ""))
    assert [b["title"] for b in offer["buttons"]] == ["需要", "不用"]
    assert "订单号" in shopper.texts("/affirm")


def test_the_service_phone_is_an_answer_not_a_ticket(stack):
    shopper = Shopper(stack)
    assert "400-000-0000" in shopper.texts("客服电话多少")
    assert asyncio.run(stored_open_ticket(stack.redis_url, shopper.sender)) is None


def test_the_queue_reply_carries_the_handoff_status(stack):
    shopper = Shopper(stack)
    replies = shopper.say("转人工")
    (status,) = customs(replies, "handoff_status")
    ticket = asyncio.run(stored_open_ticket(stack.redis_url, shopper.sender))
    assert status["state"] == "queued" and status["ticket_id"] == ticket.id
    assert status["position"] >= 1 and status["eta_min"] >= 1


async def _resolve(stack, sender):
    store = TicketStore.from_url(stack.redis_url)
    api = RasaApi(f"http://127.0.0.1:{stack.rasa_port}", stack.token)
    try:
        ticket = await store.open_ticket_for(sender)
        await store.claim(ticket.id, "survey-agent")
        await store.resolve(ticket.id, "survey-agent")
        await api.resume(sender)
        return ticket.id
    finally:
        await store.close()
        await api.close()


async def _ticket(stack, ticket_id):
    store = TicketStore.from_url(stack.redis_url)
    try:
        return await store.get(ticket_id)
    finally:
        await store.close()


def test_the_survey_stores_resolved_and_the_comment(stack):
    shopper = Shopper(stack)
    shopper.say("转人工")
    ticket_id = asyncio.run(_resolve(stack, shopper.sender))
    comment = "还没解决，" + "很" * 500
    shopper.say("/rate" + json.dumps({"csat": 2, "resolved": False, "comment": comment}, ensure_ascii=False))
    ticket = asyncio.run(_ticket(stack, ticket_id))
    assert (ticket.rating, ticket.survey_resolved) == (2, False)
    assert ticket.survey_comment.startswith("还没解决") and len(ticket.survey_comment) <= 300


def test_a_ticket_is_looked_up_only_by_its_owner(stack):
    owner = Shopper(stack, "c1002")
    owner.say("转人工")
    ticket = asyncio.run(stored_open_ticket(stack.redis_url, owner.sender))
    asyncio.run(_resolve(stack, owner.sender))

    mine = owner.texts(f"查一下工单 {ticket.id}")
    assert ticket.id in mine and "已处理完毕" in mine
    same_customer = Shopper(stack, "c1002").texts(ticket.id)  # another conversation, same verified customer
    assert "已处理完毕" in same_customer

    attacker = Shopper(stack, "c1001")
    theirs = attacker.texts(f"查一下工单 {ticket.id}")
    unknown = attacker.texts("查一下工单 T2099010199999")
    assert theirs.replace(ticket.id, "T…") == unknown.replace("T2099010199999", "T…")
    assert "已处理" not in theirs and "排队" not in theirs
    guest = Shopper(stack).texts(f"查一下工单 {ticket.id}")
    assert "已处理" not in guest and re.search(r"没有找到", guest)
