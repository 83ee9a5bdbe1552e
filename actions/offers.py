"""A plain 「好的」 after 小保 offered something (e.g. 「需要我帮您申请吗？」) accepts that offer; a
「不用」 declines it. A yes/no button that no longer matches anything 小保 asked is refused politely."""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, UserUttered, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher

from actions.buttons import stale_button

OFFER_PREFIX = "utter_offer_"


def pending_offer(events: List[Dict[str, Any]]) -> Optional[str]:
    """The intent offered by the bot's last message before the shopper's latest message."""
    seen_latest_user = False
    for event in reversed(events):
        if event.get("event") == "user":
            if seen_latest_user:
                return None
            seen_latest_user = True
        elif event.get("event") == "bot" and seen_latest_user:
            utter = (event.get("metadata") or {}).get("utter_action") or ""
            return utter[len(OFFER_PREFIX):] if utter.startswith(OFFER_PREFIX) else None
    return None


class ActionAcceptOffer(Action):
    def name(self) -> Text:
        return "action_accept_offer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        intent = pending_offer(tracker.events)
        if intent is None:
            dispatcher.utter_message(response="utter_button_expired" if stale_button(tracker) else "utter_anything_else")
            return []
        # Replace the 「好的」 turn with the intent it accepted, as the two-stage fallback does,
        # so the dialogue continues exactly as if the shopper had asked for it. The replayed turn
        # keeps the channel, message id and metadata of the one it replaces: WeChat identity,
        # the signed-in customer and where agent replies go all come from them.
        text = tracker.latest_message.get("text")
        parse_data = {"intent": {"name": intent, "confidence": 1.0}, "entities": [], "text": text}
        return [UserUtteranceReverted(), ActionExecuted("action_listen"), replayed_turn(tracker, text, parse_data)]


class ActionDeclineOffer(Action):
    """「不用」 or 「算了」 outside a form: fine, unless it is an old button nothing asked for."""

    def name(self) -> Text:
        return "action_decline_offer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(response="utter_button_expired" if stale_button(tracker) else "utter_anything_else")
        return []


def replayed_turn(tracker: Tracker, text: Optional[str], parse_data: Dict[str, Any]) -> Dict[str, Any]:
    """The latest user turn again, with new parse data and everything else it carried."""
    latest = next((e for e in reversed(tracker.events) if e.get("event") == "user"), {})
    event = UserUttered(text, parse_data=parse_data, timestamp=time.time(),
                        input_channel=latest.get("input_channel") or tracker.get_latest_input_channel())
    event["message_id"] = latest.get("message_id")
    event["metadata"] = latest.get("metadata") or {}
    return event
