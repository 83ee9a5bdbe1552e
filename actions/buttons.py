"""Which button payloads the bot is waiting for, so an old or forged one is refused politely.

A button sends its payload (「/affirm」, 「/inform{"order_id": …}」) as the message text. The widget
keeps old buttons on screen and any client can type a payload, so an answer-payload (yes, no, a
picked option) only counts when the bot's latest turn offered it: as a button or as an order card.
Payloads that start something (「/request_return」 from a menu, 「/rate{…}」 from a survey) are
commands, always allowed; the dialogue decides what they do.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from bot.transcript import parse_payload

ANSWER_INTENTS = frozenset({"affirm", "deny", "inform", "stop"})


def offered_payloads(events: List[Dict[str, Any]]) -> List[str]:
    """The payloads the bot offered in its turn just before the latest user message."""
    seen_latest_user, offered = False, []
    for event in reversed(events):
        if event.get("event") == "user":
            if seen_latest_user:
                break
            seen_latest_user = True
        elif event.get("event") == "bot" and seen_latest_user:
            data = event.get("data") or {}
            offered += [b.get("payload") for b in data.get("buttons") or [] if isinstance(b, dict)]
            custom = data.get("custom") or {}
            if isinstance(custom, dict) and custom.get("type") == "order_cards":
                offered += [o.get("payload") for o in custom.get("orders") or [] if isinstance(o, dict)]
    return [p for p in offered if isinstance(p, str)]


def is_stale(text: str, intent: Optional[str], events: List[Dict[str, Any]]) -> bool:
    """True when `text` is an answer payload the bot's latest turn did not offer."""
    parsed = parse_payload(text, strict=True)
    if parsed is None or intent not in ANSWER_INTENTS:
        return False
    return parsed not in [parse_payload(p, strict=True) for p in offered_payloads(events)]


def stale_button(tracker: Any) -> bool:
    """`is_stale` for the latest message of a rasa_sdk tracker."""
    latest = tracker.latest_message or {}
    return is_stale(latest.get("text") or "", (latest.get("intent") or {}).get("name"), tracker.events)
