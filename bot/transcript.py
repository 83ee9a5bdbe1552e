"""A conversation as people read it: what the shopper typed or tapped, what the bot offered.

The tracker records a tapped button as its payload (`/inform{"order_id": "2026…"}`, `/affirm`),
which means nothing to a support agent or to a shopper reloading the page. Here each user turn
that is a payload becomes the title of the button the bot offered for it (「确认提交」), or, for a
payload no button offered (typed by hand, forged, or sent by the widget's own controls), a short
Chinese description (「订单 2026…」, 「评分：4分」). Photos sent with a message are listed, and
each bot turn keeps the buttons it offered, its custom payload and its citations.

Pure: the widget's history (/chat/history) and the agent console's transcript both use `turns`.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Mapping, Optional

PAYLOAD = re.compile(r"^/(?P<intent>[A-Za-z_][\w-]*)(?P<entities>\{.*)?$", re.S)
INTENT_TITLES = {
    "affirm": "是的", "deny": "不是", "stop": "算了", "request_human": "转人工客服",
    "request_return": "退换货", "order_status": "查物流", "greet": "你好", "thanks": "谢谢",
    "goodbye": "再见", "handed_back": "（客服已交还小保）",
}
SENDERS = {"agent", "system"}


def parse_payload(text: str, strict: bool = False) -> Optional[tuple]:
    """(intent, entities) of a `/intent{json}` payload, or None for ordinary text. Entities that
    are not a JSON object are treated as none (the text came from whoever sent it), or, when
    `strict`, make the text no payload at all (actions/buttons.py compares payloads exactly)."""
    match = PAYLOAD.match((text or "").strip())
    if not match:
        return None
    entities: Dict[str, Any] = {}
    if match.group("entities"):
        try:
            parsed = json.loads(match.group("entities"))
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict) and strict:
            return None
        entities = parsed if isinstance(parsed, dict) else {}
    return match.group("intent"), entities


def describe_payload(intent: str, entities: Mapping[str, Any], titles: Mapping[str, str] = None) -> str:
    """A short Chinese description of a payload that no offered button explains."""
    titles = titles or {}
    if intent == "rate":
        parts = []
        if "resolved" in entities:
            parts.append("问题已解决" if entities.get("resolved") in (True, "true", 1) else "问题未解决")
        if entities.get("csat") is not None:
            parts.append(f"评分：{entities.get('csat')}分")
        if entities.get("comment"):
            parts.append(f"评价：{str(entities.get('comment'))[:200]}")
        return "，".join(parts) or "评分"
    if entities.get("order_id"):
        return f"订单 {entities['order_id']}"
    if entities.get("kb_entry"):
        entry = str(entities["kb_entry"])
        return titles.get(entry, entry)
    if entities.get("item_id"):
        return f"商品 {entities['item_id']}"
    if entities.get("return_reason"):
        return f"原因：{entities['return_reason']}"
    return INTENT_TITLES.get(intent, "（点选了一个选项）")


def _offered(buttons: List[Dict[str, Any]], payload: str) -> Optional[str]:
    for button in buttons:
        if str(button.get("payload", "")).strip() == payload.strip():
            return str(button.get("title") or "")
    return None


def turns(events: List[Dict[str, Any]], titles: Mapping[str, str] = None) -> List[Dict[str, Any]]:
    """Readable turns of a tracker's events (see the module docstring). `titles` maps knowledge
    entry ids to their titles, for tapped 「猜你想问」 questions."""
    result: List[Dict[str, Any]] = []
    offered: List[Dict[str, Any]] = []  # every button of the bot's turns since the last user turn
    for event in events:
        kind = event.get("event")
        if kind == "user":
            text = event.get("text") or ""
            metadata = event.get("metadata") or {}
            photos = [str(p) for p in metadata.get("attachments") or [] if p]
            payload = parse_payload(text)
            tap = payload is not None
            if tap:
                text = _offered(offered, text) or describe_payload(payload[0], payload[1], titles)
            result.append({"from": "user", "text": text, "at": event.get("timestamp"), "tap": tap,
                           "photos": photos, "buttons": [], "custom": None, "citations": [], "agent_name": None})
            offered = []
        elif kind == "bot":
            data = event.get("data") or {}
            metadata = event.get("metadata") or {}
            buttons = [{"title": str(b.get("title") or ""), "payload": str(b.get("payload") or "")}
                       for b in (data.get("buttons") or data.get("quick_replies") or []) if isinstance(b, dict)]
            offered += buttons
            custom = data.get("custom") if isinstance(data.get("custom"), dict) else None
            sent_by = metadata.get("sent_by")
            result.append({
                "from": sent_by if sent_by in SENDERS else "bot", "text": event.get("text") or "",
                "at": event.get("timestamp"), "tap": False, "photos": [], "buttons": buttons, "custom": custom,
                "citations": list((custom or {}).get("citations") or []),
                "agent": metadata.get("agent"),
                "agent_name": metadata.get("agent_name") or metadata.get("agent"),
            })
    return result
