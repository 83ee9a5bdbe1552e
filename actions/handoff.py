"""Complaint intake and escalation to a person: ticket, queue position, and pausing the bot."""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Optional, Text

from redis.exceptions import RedisError
from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import risk_signals, services
from actions.returns import client_ip, owned_order
from actions.services import customer_of, session_so_far, tickets
from bot import limits
from bot.handoff.triggers import (
    NORMAL,
    PRIORITY_ORDER,
    URGENT,
    Escalation,
    escalation_for,
    handoff_texts,
    rules,
)
from bot.orders.client import OrderSystemUnavailable
from bot.orders.models import to_dict

MINUTES_PER_TICKET_AHEAD = 3
# Nobody floods the ticket queue: new tickets are limited per conversation and per client IP (an
# hour) and for everyone together (a minute), in Redis, shared by every replica. A conversation
# that already has an open ticket is always told its place in the queue.
TICKETS_PER_SENDER_PER_HOUR = 3
TICKETS_PER_IP_PER_HOUR = 10
TICKETS_PER_MINUTE = int(os.environ.get("TICKETS_PER_MINUTE", "30"))
logger = logging.getLogger(__name__)
DETAILS_FROM_FIRST_MESSAGE = 12  # a complaint that already tells the story needs no question


def transcript(events: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Every user and bot turn, with the citations the bot gave."""
    turns = []
    for event in events:
        if event.get("event") == "user":
            turns.append({"from": "user", "text": event.get("text") or "", "at": event.get("timestamp")})
        elif event.get("event") == "bot":
            custom = (event.get("data") or {}).get("custom")
            turns.append({"from": "bot", "text": event.get("text") or "", "at": event.get("timestamp"),
                          **({"custom": custom} if custom else {})})
    return turns


def kb_answers(turns: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [t["custom"] for t in turns if (t.get("custom") or {}).get("type") in ("rights_answer", "policy_answer")]


def photos(tracker: Tracker, events: List[Dict[str, Any]]) -> List[str]:
    found = [p for p in tracker.get_slot("return_evidence") or [] if p.startswith("photo:")]
    for event in events:
        if event.get("event") == "user":
            found += [f"photo:{p}" for p in (event.get("metadata") or {}).get("attachments") or []]
    return list(dict.fromkeys(found))


def most_urgent(*candidates: Optional[Escalation]) -> Optional[Escalation]:
    present = [c for c in candidates if c is not None]
    return min(present, key=lambda e: PRIORITY_ORDER[e.priority]) if present else None


def user_intents(events: List[Dict[str, Any]]) -> List[str]:
    return [((e.get("parse_data") or {}).get("intent") or {}).get("name") for e in events if e.get("event") == "user"]


class ValidateComplaintForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_complaint_form"

    async def required_slots(self, domain_slots, dispatcher, tracker, domain) -> List[Text]:
        text = tracker.get_slot("complaint_details") or tracker.latest_message.get("text") or ""
        found = escalation_for(text, "complain")
        if found is not None and found.priority == URGENT:
            return []  # safety first: no questions, a person now
        return ["complaint_details", "complaint_outcome"]

    async def extract_complaint_details(self, dispatcher, tracker, domain) -> Dict[Text, Any]:
        text = (tracker.latest_message.get("text") or "").strip()
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        requested = tracker.get_slot("requested_slot")
        if intent in ("request_human", "stop") or not text:
            return {}
        if requested == "complaint_details" or (requested is None and len(text) >= DETAILS_FROM_FIRST_MESSAGE):
            return {"complaint_details": text}
        return {}

    async def extract_complaint_outcome(self, dispatcher, tracker, domain) -> Dict[Text, Any]:
        text = (tracker.latest_message.get("text") or "").strip()
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if tracker.get_slot("requested_slot") != "complaint_outcome" or not text or intent in ("request_human", "stop"):
            return {}
        return {"complaint_outcome": text}


class ActionAskComplaintOutcome(Action):
    def name(self) -> Text:
        return "action_ask_complaint_outcome"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(response="utter_ask_complaint_outcome",
                                 buttons=[{"title": o, "payload": o} for o in handoff_texts()["outcomes"]])
        return []


class ActionEscalate(Action):
    def name(self) -> Text:
        return "action_escalate"

    def default_escalation(self, tracker: Tracker, intent: Optional[str]) -> Escalation:
        if tracker.get_slot("form_failures"):
            return Escalation("bot_failed", NORMAL)  # a form step failed twice
        return Escalation("human_request" if intent == "request_human" else "complaint", NORMAL)

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        text = tracker.latest_message.get("text") or ""
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        details = tracker.get_slot("complaint_details")
        events = await session_so_far(tracker)
        escalation = most_urgent(
            escalation_for(text, intent, user_intents(events)[:-1]),
            escalation_for(details, "complain") if details else None,
        ) or self.default_escalation(tracker, intent)

        turns = transcript(events)
        order = await self._order(tracker)
        outcome = tracker.get_slot("complaint_outcome")
        summary = "｜".join(part for part in (
            rules()["categories"][escalation.category], details or text,
            f"诉求：{outcome}" if outcome else "", f"订单：{order['order_id']}" if order else "",
        ) if part)[:200]
        store = tickets()
        urgent = escalation.priority == URGENT
        if await store.open_ticket_for(tracker.sender_id) is None and not await self._may_open_ticket(tracker, urgent):
            # A safety incident refused a ticket still gets the emergency advice first.
            dispatcher.utter_message(response="utter_handoff_busy_urgent" if urgent else "utter_handoff_busy")
            return [SlotSet("complaint_details", None), SlotSet("complaint_outcome", None), SlotSet("form_failures", None)]
        ticket, created = await store.create(
            tracker.sender_id, escalation.category, escalation.priority,
            tracker.get_latest_input_channel() or "unknown", summary,
            customer=await customer_of(tracker), order_id=order["order_id"] if order else None,
            evidence={"order": order, "photos": photos(tracker, events), "transcript": turns, "kb_answers": kb_answers(turns)},
        )
        try:
            if created:
                await risk_signals.escalated(tracker, ticket, details or text, order)
        except Exception:  # noqa: BLE001 - a rights signal never breaks the conversation
            logger.warning("rights signal of ticket %s not sent", ticket.id)
        ahead = max((await store.position(ticket.id) or 1) - 1, 0)
        if not created:
            dispatcher.utter_message(response="utter_handoff_already_queued", ticket_id=ticket.id, ahead=ahead)
        elif escalation.priority == URGENT:
            dispatcher.utter_message(response="utter_handoff_urgent", ticket_id=ticket.id)
        else:
            dispatcher.utter_message(response="utter_handoff_queued", ticket_id=ticket.id, ahead=ahead,
                                     wait=max(1, (ahead + 1) * MINUTES_PER_TICKET_AHEAD))
        return [SlotSet("complaint_details", None), SlotSet("complaint_outcome", None), SlotSet("form_failures", None),
                ConversationPaused()]

    async def _may_open_ticket(self, tracker: Tracker, urgent: bool = False) -> bool:
        """Reserves one new ticket within the limits; False when a limit is reached. A safety
        incident (urgent) is not held back by the global limit, only by the per-sender and
        per-IP ones, so a flood elsewhere never keeps an injured shopper from a person.

        When Redis cannot be read the ticket is allowed: nobody is refused a person by an outage
        (and the ticket store, in the same Redis, decides then).
        """
        redis = services.limits_redis()
        ip = client_ip(tracker)
        checks = [("tickets-sender", tracker.sender_id, 3600, TICKETS_PER_SENDER_PER_HOUR),
                  *([("tickets-ip", ip, 3600, TICKETS_PER_IP_PER_HOUR)] if ip else []),
                  *([] if urgent else [("tickets-all", "all", 60, TICKETS_PER_MINUTE)])]
        try:
            for n, (kind, subject, window_s, limit) in enumerate(checks):
                if await limits.hit(redis, kind, subject, window_s) > limit:
                    for earlier_kind, earlier, _, _ in checks[:n]:  # only the limit reached counts it
                        await limits.release(redis, earlier_kind, earlier)
                    logger.warning("ticket not opened: %s limit of %d reached", kind, limit)
                    return False
        except (RedisError, OSError) as error:
            logger.warning("ticket limits not checked (%s); opening the ticket", error)
        return True

    async def _order(self, tracker: Tracker) -> Optional[Dict[str, Any]]:
        try:
            order = await owned_order(tracker, tracker.get_slot("order_id"))
        except OrderSystemUnavailable:
            return None
        return to_dict(order) if order else None


class ActionDefaultFallback(ActionEscalate):
    """Clarifying failed twice (or the dialogue policy is lost): a person takes over."""

    def name(self) -> Text:
        return "action_default_fallback"

    def default_escalation(self, tracker: Tracker, intent: Optional[str]) -> Escalation:
        return Escalation("bot_failed", NORMAL)

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(response="utter_default")
        return await super().run(dispatcher, tracker, domain)


class ActionStoreRating(Action):
    def name(self) -> Text:
        return "action_store_rating"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        rating = next(tracker.get_latest_entity_values("csat"), None) or tracker.get_slot("csat")
        try:
            value = int(float(rating))
        except (TypeError, ValueError):
            value = 0
        if 1 <= value <= 5:
            rated = await tickets().rate(tracker.sender_id, value)
            try:
                await risk_signals.rated(tracker, value, rated)
            except Exception:  # noqa: BLE001 - a rights signal never breaks the conversation
                logger.warning("low-rating signal not sent")
        dispatcher.utter_message(response="utter_thanks_for_rating")
        return [SlotSet("csat", None)]
