"""Answering consumer-rights and store-policy questions from the knowledge base."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.knowledge.answering import Decision, answer_payload, decide, intent_for
from bot.knowledge.kb import Entry
from bot.knowledge.retrieval import Hit, KnowledgeIndex, default_index

LEGAL_NOTE_SLOT = "legal_note_shown"
ENTRY_ENTITY = "kb_entry"

# rasa_sdk imports action modules when the server starts: build the index then, not on the
# first question.
default_index()


def entry_button(entry: Entry) -> Dict[str, str]:
    payload = json.dumps({ENTRY_ENTITY: entry.id}, ensure_ascii=False)
    return {"title": entry.title, "payload": f"/{intent_for(entry)}{payload}"}


def chosen_entry(tracker: Tracker, index: KnowledgeIndex) -> Optional[Entry]:
    """The entry a shopper picked from clarification buttons, if this message is that pick."""
    entry_id = next(tracker.get_latest_entity_values(ENTRY_ENTITY), None)
    return index.by_id.get(entry_id) if entry_id else None


class ActionAnswerQuestion(Action):
    def name(self) -> Text:
        return "action_answer_question"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        text = tracker.latest_message.get("text") or ""
        index = default_index()
        picked = chosen_entry(tracker, index)
        if picked is not None:
            decision = Decision("answer", (Hit(picked, 0.0, 1.0),))
        else:
            decision = decide(index.search(text, k=3))

        if decision.kind == "none":
            dispatcher.utter_message(response="utter_kb_no_answer")
            return []
        if decision.kind == "clarify":
            dispatcher.utter_message(
                response="utter_kb_clarify", buttons=[entry_button(h.entry) for h in decision.hits]
            )
            return []
        return self._answer(dispatcher, tracker, decision)

    def _answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, decision: Decision
    ) -> List[Dict[Text, Any]]:
        entry, events = decision.best.entry, []
        payload = answer_payload(entry, decision.best.confidence)
        if entry.kind == "policy":
            dispatcher.utter_message(response="utter_policy_answer", answer=entry.answer, json_message=payload)
        else:
            dispatcher.utter_message(
                response="utter_rights_answer",
                answer=entry.answer,
                citation=entry.citation_line,
                json_message=payload,
            )
            if not tracker.get_slot(LEGAL_NOTE_SLOT):
                dispatcher.utter_message(response="utter_legal_note")
                events.append(SlotSet(LEGAL_NOTE_SLOT, True))
        if decision.related is not None:
            dispatcher.utter_message(
                response="utter_kb_also_asked",
                title=decision.related.entry.title,
                buttons=[entry_button(decision.related.entry)],
            )
        elif entry.next_actions:
            dispatcher.utter_message(response=f"utter_offer_{entry.next_actions[0]}")
        return events
