"""Clarification step of the two-stage fallback: offer the likely intents as buttons."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, List, Text

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.turns import ends_turn
from bot.paths import KNOWLEDGE_DIR

MAX_CHOICES = 3
# Two-stage fallback treats out_of_scope as "none of these", which leads to a rephrase request.
NONE_OF_THESE_PAYLOAD = "/out_of_scope"
NEVER_OFFERED = {"nlu_fallback", "out_of_scope", "unreadable"}


@lru_cache(maxsize=1)
def intent_labels() -> Dict[str, Any]:
    return yaml.safe_load((KNOWLEDGE_DIR / "intent_labels.yml").read_text(encoding="utf-8"))


def clarification_buttons(intent_ranking: List[Dict[str, Any]]) -> List[Dict[str, str]]:
    """Buttons for the most likely intents that have a label, then "none of these"."""
    labels = intent_labels()
    choices = [
        item["name"]
        for item in intent_ranking
        if item.get("name") not in NEVER_OFFERED and item.get("name") in labels["intents"]
    ][:MAX_CHOICES]
    buttons = [{"title": labels["intents"][name], "payload": f"/{name}"} for name in choices]
    buttons.append({"title": labels["none_of_these"], "payload": NONE_OF_THESE_PAYLOAD})
    return buttons


class ActionDefaultAskAffirmation(Action):
    def name(self) -> Text:
        return "action_default_ask_affirmation"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        ranking = tracker.latest_message.get("intent_ranking") or []
        dispatcher.utter_message(
            response="utter_ask_affirmation", buttons=clarification_buttons(ranking)
        )
        return []


# Hybrid retrieval confidence above which an "out of scope" message is answered from the KB
# (calibrated on the KB held-out set's unanswerable questions: about 1 in 25 reaches it).
KB_OVERRULES_OUT_OF_SCOPE = 0.55


class ActionOutOfScope(Action):
    """A question outside the store's customer service: say so politely, and point to where it
    can be answered (12333, 12348 法律援助, a lawyer, 12315) instead of leaving the shopper empty-handed."""

    def name(self) -> Text:
        return "action_out_of_scope"

    @ends_turn
    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        from actions import rights
        from bot.knowledge.referrals import out_of_scope_reply

        text = tracker.latest_message.get("text") or ""
        if text and not text.startswith("/"):
            # The classifier calls many offline consumer stories (a 4S shop, a gym card, a hotel)
            # out of scope; the knowledge base, with sentence embeddings, is a second opinion.
            decision = await rights.decide_for(rights.default_index(dense=True), text)
            if decision.kind == "answer" and decision.best.confidence >= KB_OVERRULES_OUT_OF_SCOPE:
                return rights.ActionAnswerQuestion().answer(dispatcher, tracker, decision)
        dispatcher.utter_message(text=out_of_scope_reply(text))
        return []
