"""Answering consumer-rights and store-policy questions from the knowledge base."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any, Dict, List, Optional, Sequence, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import risk_signals
from actions.turns import ends_turn
from bot.knowledge.answering import Decision, answer_payload, decide, intent_for
from bot.knowledge.kb import Entry
from bot.knowledge.retrieval import Hit, KnowledgeIndex, default_index
from bot.nlu.question import split_questions

LEGAL_NOTE_SLOT = "legal_note_shown"
ENTRY_ENTITY = "kb_entry"
# BM25 alone is trusted, and the 30-60 ms of a sentence embedding saved, when it is this sure
# and clearly ahead of the runner-up.
LEXICAL_SURE = 0.75
LEXICAL_CLEAR_WIN = 1.25
MAX_QUESTIONS = 3
logger = logging.getLogger(__name__)

# rasa_sdk imports action modules when the server starts: build the index (and load or compute
# the knowledge base's sentence vectors) then, not on the first question.
default_index(dense=True)


def _lexically_sure(hits: Sequence[Hit]) -> bool:
    return bool(hits) and hits[0].confidence >= LEXICAL_SURE and (
        len(hits) < 2 or hits[0].score >= LEXICAL_CLEAR_WIN * hits[1].score
    )


async def rank(index: KnowledgeIndex, text: str, k: int = 3) -> List[Hit]:
    """BM25 first; the hybrid ranking (sentence embeddings) only when BM25 is not sure. The
    embedding runs in a worker thread (the C engine releases the GIL), not on the event loop."""
    hits = index.search(text, k=k, dense=False)
    if not index.dense or _lexically_sure(hits):
        return hits
    return await asyncio.get_running_loop().run_in_executor(None, lambda: index.search(text, k=k))


async def decide_for(index: KnowledgeIndex, text: str) -> Decision:
    """The answer to a message, and to its second question when it asks two."""
    parts = split_questions(text)[:MAX_QUESTIONS]
    hits = await rank(index, text, k=4)
    second = [await rank(index, part, k=1) for part in parts] if len(parts) > 1 else []
    return decide(hits, second)


def entry_button(entry: Entry) -> Dict[str, str]:
    payload = json.dumps({ENTRY_ENTITY: entry.id}, ensure_ascii=False)
    return {"title": entry.title, "payload": f"/{intent_for(entry)}{payload}"}


def chosen_entry(tracker: Tracker, index: KnowledgeIndex) -> Optional[Entry]:
    """The entry a shopper picked from clarification buttons, if this message is that pick."""
    entry_id = next(tracker.get_latest_entity_values(ENTRY_ENTITY), None)
    return index.by_id.get(entry_id) if entry_id else None


# 「客服电话多少」「人工几点上班」: the store's contact entry, whatever else the words resemble.
CONTACT_ENTRY = "policy_human_service_hours"
_CONTACT_QUESTION = re.compile(
    r"(客服|售后|人工|你们|店里|官方|热线).{0,4}(电话|热线|联系方式).{0,4}(多少|是什么|是啥|几号|哪个|[?？]|$|给|打)"
    r"|有没有.{0,4}(电话|热线)"
    r"|(客服|售后|人工).{0,6}(几点|什么时候|啥时候|(上班|工作|服务|在线)时间)"
    r"|(周末|节假日|晚上).{0,4}(客服|人工).{0,4}(上班|有人|在吗)")


def asks_for_contact(text: str) -> bool:
    return bool(_CONTACT_QUESTION.search(text or ""))


def contact_entry(index: KnowledgeIndex, text: str) -> Optional[Entry]:
    """The contact entry when the message asks for the store's phone or service hours."""
    return index.by_id.get(CONTACT_ENTRY) if asks_for_contact(text) else None


class ActionAnswerQuestion(Action):
    def name(self) -> Text:
        return "action_answer_question"

    @ends_turn
    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        text = tracker.latest_message.get("text") or ""
        index = default_index(dense=True)
        picked = chosen_entry(tracker, index) or contact_entry(index, text)
        if picked is not None:
            decision = Decision("answer", (Hit(picked, 0.0, 1.0),))
        else:
            decision = await decide_for(index, text)

        if decision.kind == "none":
            dispatcher.utter_message(response="utter_kb_no_answer")
            return []
        if decision.kind == "clarify":
            dispatcher.utter_message(
                response="utter_kb_clarify", buttons=[entry_button(h.entry) for h in decision.hits]
            )
            return []
        events = self.answer(dispatcher, tracker, decision)
        try:
            await risk_signals.rights_question(tracker, decision.best.entry.id)
        except Exception:  # noqa: BLE001 - a rights signal never breaks the conversation
            logger.warning("rights-question signal not sent")
        return events

    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, decision: Decision, offer: Optional[str] = None
    ) -> List[Dict[Text, Any]]:
        """Says the answer; then offers `offer` (an intent), else the entry's first next action."""
        events: List[Dict[Text, Any]] = []
        entry = decision.best.entry
        self._say(dispatcher, entry, decision.best.confidence, titled=decision.hedged)
        if decision.related is not None:
            self._say(dispatcher, decision.related.entry, decision.related.confidence, titled=True)
        cited = entry.kind != "policy" or (decision.related is not None and decision.related.entry.kind != "policy")
        if cited and not tracker.get_slot(LEGAL_NOTE_SLOT):
            dispatcher.utter_message(response="utter_legal_note")
            events.append(SlotSet(LEGAL_NOTE_SLOT, True))
        if decision.suggestions:
            dispatcher.utter_message(
                response="utter_kb_suggestions", buttons=[entry_button(h.entry) for h in decision.suggestions]
            )
        offer = offer or (entry.next_actions[0] if entry.next_actions else None)
        if offer:
            dispatcher.utter_message(response=f"utter_offer_{offer}")
        return events

    @staticmethod
    def _say(dispatcher: CollectingDispatcher, entry: Entry, confidence: float, titled: bool) -> None:
        """One answer; `titled` puts the question it answers on top (「关于「…」：」)."""
        payload = answer_payload(entry, confidence)
        suffix = "_titled" if titled else ""
        if entry.kind == "policy":
            dispatcher.utter_message(
                response=f"utter_policy_answer{suffix}", answer=entry.answer, title=entry.title, json_message=payload
            )
        else:
            dispatcher.utter_message(
                response=f"utter_rights_answer{suffix}",
                answer=entry.answer,
                title=entry.title,
                citation=entry.citation_line,
                json_message=payload,
            )
