"""What agents see of a ticket, its evidence pack and its conversation: the view helpers that
turn tickets, orders, returns and tracker events into the dicts the console's pages and API send
(machine values plus Chinese labels), and find and shrink the uploaded photos behind them. No
request handling here: bot.console.app and the route modules (search, order actions, regulators)
build on these."""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional
from urllib.parse import quote

from bot.console.regulators import order_labels
from bot.handoff.tickets import Ticket, now
from bot.knowledge.kb import load_entries
from bot.settings import Settings
from bot.transcript import turns

logger = logging.getLogger(__name__)

# A photo in the evidence pack is `photo:<reference>`: a web-chat upload's URL (…/uploads/<name>)
# or a WeChat photo (wechat-media:<name>). Both are files in <var>/uploads; only the file name is
# used, so a reference can never name another file, and other references are listed, not fetched.
PHOTO_FILE = re.compile(r"(?:^wechat-media:|/uploads/)([0-9a-f]{32}\.(jpg|png|webp))$")
PHOTO_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
THUMBNAIL_PX = 240
# What agents and supervisors read: the API keeps the machine values (status, priority, ...) and
# adds these Chinese labels (…_label) for display.
TICKET_STATUS_LABELS = {"waiting": "排队中", "claimed": "已接入", "resolved": "已解决"}
PRIORITY_LABELS = {"urgent": "紧急", "high": "高", "normal": "普通"}
CHANNEL_LABELS = {"socketio": "网页聊天", "wechat": "微信", "rest": "接口", "unknown": "未知渠道"}


def ticket_view(ticket: Ticket, at: Optional[dt.datetime] = None,
                displays: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """A ticket for the page: its fields (machine values), Chinese labels, the assignee's and the
    note authors' display names (`displays`: login -> display name), and the SLA clock."""
    at, displays = at or now(), displays or {}
    created, due = dt.datetime.fromisoformat(ticket.created_at), dt.datetime.fromisoformat(ticket.sla_due)
    view = {k: v for k, v in asdict(ticket).items() if k != "evidence"}
    view.update(category_label=ticket.category_label, waiting_s=int((at - created).total_seconds()),
                sla_remaining_s=int((due - at).total_seconds()),
                status_label=TICKET_STATUS_LABELS.get(ticket.status, ticket.status),
                priority_label=PRIORITY_LABELS.get(ticket.priority, ticket.priority),
                channel_label=CHANNEL_LABELS.get(ticket.channel, ticket.channel),
                assignee_name=displays.get(ticket.assignee or "", ticket.assignee),
                notes=[{**n, "agent_name": displays.get(str(n.get("agent")), n.get("agent"))} for n in ticket.notes])
    return view


def order_view(order: Dict[str, Any]) -> Dict[str, Any]:
    labels = order_labels().get("order_status") or {}
    return {**order, "status_label": labels.get(order.get("status"), order.get("status"))}


def return_view(ret: Dict[str, Any]) -> Dict[str, Any]:
    labels = order_labels()
    return {**ret, "kind_label": (labels.get("return_kind") or {}).get(ret.get("kind"), ret.get("kind")),
            "status_label": (labels.get("return_status") or {}).get(ret.get("status"), ret.get("status"))}


def citation_line(citation: Dict[str, Any]) -> str:
    return f"《{citation.get('law')}》第{citation.get('article')}条"


@lru_cache(maxsize=1)
def kb_titles() -> Dict[str, str]:
    """Knowledge-base entry id -> title, for the answers named in evidence packs."""
    try:
        return {entry.id: entry.title for entry in load_entries()}
    except Exception:
        logger.warning("could not load the knowledge base for entry titles", exc_info=True)
        return {}


def photo_file(settings: Settings, reference: Any) -> Optional[Path]:
    """The uploaded file an evidence photo reference names, if it is one of ours and exists."""
    if not isinstance(reference, str):
        return None
    found = PHOTO_FILE.search(reference.removeprefix("photo:").split("?", 1)[0])
    if found is None:
        return None
    path = settings.uploads_dir / found.group(1)
    return path if path.is_file() else None


def order_summary(order: Any) -> Optional[Dict[str, Any]]:
    """What an agent needs of the order in the evidence pack (as it was at escalation)."""
    if not isinstance(order, dict) or not order.get("order_id"):
        return None
    logistics = [e for e in order.get("logistics") or [] if isinstance(e, dict)]
    return {
        "order_id": order.get("order_id"), "status": order.get("status"), "created_at": order.get("created_at"),
        "signed_at": order.get("signed_at"), "carrier": order.get("carrier"), "tracking_no": order.get("tracking_no"),
        "freight_insurance": bool(order.get("freight_insurance")),
        "items": [{"name": i.get("name"), "quantity": i.get("quantity", 1), "price": i.get("price")}
                  for i in order.get("items") or [] if isinstance(i, dict)],
        "latest_logistics": logistics[-1].get("description") if logistics else None,
    }


def evidence_view(ticket: Ticket, settings: Settings) -> Dict[str, Any]:
    """The evidence pack as the console shows it: photo thumbnails (served by the console to
    logged-in agents only), the order, and the knowledge-base answers given (titles, citations)."""
    evidence = ticket.evidence if isinstance(ticket.evidence, dict) else {}
    base = f"/api/tickets/{quote(ticket.id, safe='')}/photos/"
    photos = []
    for index, reference in enumerate(evidence.get("photos") or []):
        available = photo_file(settings, reference) is not None
        photos.append({"index": index, "available": available,
                       "url": base + str(index) if available else None,
                       "thumbnail": f"{base}{index}?thumbnail=1" if available else None})
    titles = kb_titles()
    answers = []
    for answer in evidence.get("kb_answers") or []:
        if not isinstance(answer, dict):
            continue
        entry_id = str(answer.get("entry_id") or "")
        answers.append({"entry_id": entry_id, "title": titles.get(entry_id, entry_id),
                        "kind": "policy" if answer.get("type") == "policy_answer" else "rights",
                        "confidence": answer.get("confidence"),
                        "citations": [citation_line(c) for c in answer.get("citations") or [] if isinstance(c, dict)]})
    order = order_summary(evidence.get("order"))
    return {"photos": photos, "order": order_view(order) if order else None, "kb_answers": answers}


def thumbnail(path: Path) -> Optional[bytes]:
    """A small JPEG of an uploaded photo; None if it cannot be decoded (the original is served)."""
    try:
        from PIL import Image

        with Image.open(path) as image:
            image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=80)
            return out.getvalue()
    except Exception:
        logger.warning("could not make a thumbnail of %s", path.name, exc_info=True)
        return None


HANDOFF_STATE_LINES = {"queued": "排队中（第{position}位，预计约{eta_min}分钟）", "claimed": "客服「{agent_name}」已接入",
                       "ended": "人工服务已结束"}


def custom_line(custom: Optional[Dict[str, Any]]) -> Optional[str]:
    """A custom payload (contract A) as one readable line for agents; None when the turn's text
    and citations already say it all."""
    if not isinstance(custom, dict):
        return None
    kind = custom.get("type")
    if kind == "order_cards":
        cards = []
        for order in [o for o in custom.get("orders") or [] if isinstance(o, dict)][:10]:
            names = "、".join(str(i.get("name")) for i in order.get("items") or [] if isinstance(i, dict))
            total = order.get("total")
            cards.append(f"订单 {order.get('order_id')}（{order.get('status_label') or order.get('status') or '—'}"
                         f"{'，' + names if names else ''}{f'，¥{total:g}' if isinstance(total, (int, float)) else ''}）")
        return "展示了订单卡片：" + ("；".join(cards) or "无")
    if kind == "handoff_status":
        template = HANDOFF_STATE_LINES.get(str(custom.get("state")))
        if template is None:
            return None
        values = {k: custom.get(k, "?") for k in ("position", "eta_min", "agent_name")}
        return "人工服务状态：" + template.format(**values)
    if kind == "survey":
        return "请顾客评价本次服务（问题是否解决、1–5分、留言）"
    if kind == "return_request":
        label = (order_labels().get("return_kind") or {}).get(custom.get("kind"), custom.get("kind"))
        return f"售后申请 {custom.get('return_id')}（订单 {custom.get('order_id')}，{label}）"
    return None


def photo_link(ticket_id: str, index: int) -> Dict[str, Any]:
    """A transcript photo as the console serves it: by ticket and its place among the
    conversation's photos (see api_chat_photo), never by the reference the shopper sent."""
    url = f"/api/tickets/{quote(ticket_id, safe='')}/chat-photos/{index}"
    return {"index": index, "url": url, "thumbnail": url + "?thumbnail=1"}


def conversation_photos(tracker: Dict[str, Any]) -> List[str]:
    """The photo references of a conversation, in the order the transcript numbers them."""
    return [photo for turn in turns(tracker.get("events", [])) for photo in turn["photos"]]


def transcript_from_tracker(tracker: Dict[str, Any], ticket_id: Optional[str] = None) -> List[Dict[str, Any]]:
    """The conversation as agents read it (bot.transcript.turns): taps as the titles tapped, the
    options the bot offered, custom payloads as a line, citations as 《法》第N条, and photos as
    console links when `ticket_id` is given (else only counted)."""
    result, photo_index = [], 0
    for turn in turns(tracker.get("events", []), kb_titles()):
        photos = []
        for _ in turn["photos"]:
            photos.append(photo_link(ticket_id, photo_index) if ticket_id else {"index": photo_index})
            photo_index += 1
        result.append({**turn, "photos": photos, "custom_line": custom_line(turn["custom"]),
                       "citations": [citation_line(c) for c in turn["citations"] if isinstance(c, dict)]})
    return result
