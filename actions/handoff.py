"""Complaint intake and escalation to a person: ticket, queue position, and pausing the bot."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from typing import Any, Dict, List, Optional, Text

from redis.exceptions import RedisError
from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import rights, risk_signals, services
from actions.returns import client_ip, owned_order
from actions.services import customer_of, session_so_far, tickets
from bot import limits
from bot.handoff.tickets import CLAIMED, RESOLVED, WAITING, Ticket, queued_payload, wait_minutes
from bot.transcript import parse_payload
from bot.handoff.triggers import (
    NORMAL,
    PRIORITY_ORDER,
    URGENT,
    Escalation,
    escalation_for,
    handoff_texts,
    rules,
)
from bot.knowledge.answering import Decision
from bot.knowledge.retrieval import Hit
from bot.orders.client import OrderSystemUnavailable
from bot.orders.models import SHANGHAI, to_dict

# Nobody floods the ticket queue: new tickets are limited per conversation and per client IP (an
# hour) and for everyone together (a minute), in Redis, shared by every replica. A conversation
# that already has an open ticket is always told its place in the queue.
TICKETS_PER_SENDER_PER_HOUR = 3
TICKETS_PER_IP_PER_HOUR = int(os.environ.get("TICKETS_PER_IP_PER_HOUR", "10"))
TICKETS_PER_MINUTE = int(os.environ.get("TICKETS_PER_MINUTE", "30"))
logger = logging.getLogger(__name__)
DETAILS_FROM_FIRST_MESSAGE = 12  # a complaint that already tells the story needs no question
# A number left for a callback: a mainland mobile (138 1234 5678) or a landline (021-64331234).
_CALLBACK_NUMBER = re.compile(r"(?<![0-9])(1[3-9][0-9](?:[ -]?[0-9]{4}){2}|0[1-9][0-9]{1,2}[ -]?[0-9]{7,8})(?![0-9])")
_TICKET_ID = re.compile(r"(?<![0-9A-Za-z])[Tt](20[0-9]{6}[0-9]{5,})(?![0-9])")
COMMENT_MAX_CHARS = 300
_FULLWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}  # １３８－ as typed on a phone


def callback_number(text: str) -> Optional[str]:
    """The phone number in a message, without spaces; a landline keeps its area-code dash."""
    found = _CALLBACK_NUMBER.search((text or "").translate(_FULLWIDTH))
    if not found:
        return None
    number = found.group(1).replace(" ", "")
    return number if number.startswith("0") else number.replace("-", "")


def masked_phone(number: str) -> str:
    """138****5678: what the shopper sees confirmed, and what logs may show."""
    digits = number.replace("-", "")
    return f"{digits[:3]}****{digits[-4:]}" if len(digits) >= 8 else "****"


def ticket_id_in(text: str) -> Optional[str]:
    found = _TICKET_ID.search(text or "")
    return f"T{found.group(1)}" if found else None


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
        if intent in ("request_human", "stop") or not text or parse_payload(text):  # a button is no story
            return {}
        if requested == "complaint_details" or (requested is None and len(text) >= DETAILS_FROM_FIRST_MESSAGE):
            return {"complaint_details": text}
        return {}

    async def extract_complaint_outcome(self, dispatcher, tracker, domain) -> Dict[Text, Any]:
        text = (tracker.latest_message.get("text") or "").strip()
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if (tracker.get_slot("requested_slot") != "complaint_outcome" or not text or parse_payload(text)
                or intent in ("request_human", "stop")):
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
        contact = rights.contact_entry(rights.default_index(dense=True), text)
        if intent == "request_human" and contact is not None:  # 「客服电话多少」 asks, it does not request
            return rights.ActionAnswerQuestion().answer(dispatcher, tracker, Decision("answer", (Hit(contact, 0.0, 1.0),)))
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
        cleared = [SlotSet("complaint_details", None), SlotSet("complaint_outcome", None), SlotSet("form_failures", None)]
        position = await store.position(ticket.id)
        if not created:
            if not await self._tell_queued(dispatcher, ticket, position):
                return cleared  # the shopper was told nobody came in time: the bot keeps helping
            return cleared + [ConversationPaused()]
        position = position or 1
        status = queued_payload(ticket, position, wait_minutes(position))
        if escalation.priority == URGENT:
            dispatcher.utter_message(response="utter_handoff_urgent", ticket_id=ticket.id, json_message=status)
        else:
            dispatcher.utter_message(response="utter_handoff_queued", ticket_id=ticket.id, ahead=position - 1,
                                     wait=wait_minutes(position), json_message=status)
        return cleared + [ConversationPaused()]

    @staticmethod
    async def _tell_queued(dispatcher: CollectingDispatcher, ticket: Ticket, position: Optional[int]) -> bool:
        """Tells a shopper who asks again where their ticket stands: their real place in the
        queue (「第1位」, never 「前面还有0位」) and what happens next. False when the ticket
        already missed its SLA: the shopper was offered a callback and the bot keeps helping,
        so it must not fall silent again."""
        if position is None:  # an agent has it
            dispatcher.utter_message(response="utter_handoff_already_claimed", ticket_id=ticket.id)
            return True
        status = queued_payload(ticket, position, wait_minutes(position))
        if ticket.sla_notified:
            dispatcher.utter_message(response="utter_handoff_overdue_queued", ticket_id=ticket.id, position=position,
                                     json_message=status)
            return False
        dispatcher.utter_message(response="utter_handoff_already_queued", ticket_id=ticket.id, position=position,
                                 wait=wait_minutes(position), json_message=status)
        return True

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


def _entity(tracker: Tracker, name: str) -> Any:
    return next(tracker.get_latest_entity_values(name), None)


def survey_answer(value: Any) -> Optional[bool]:
    """「问题是否解决」 from the survey payload: true/false (or their strings), else unknown."""
    if isinstance(value, bool):
        return value
    return {"true": True, "false": False, "1": True, "0": False}.get(str(value).strip().lower()) if value is not None else None


class ActionStoreRating(Action):
    """Stores the survey after a handoff: `/rate{"csat": N, "resolved": true|false, "comment": "…"}`
    (or just the 1-5 rating of the older buttons) on the conversation's last resolved ticket."""

    def name(self) -> Text:
        return "action_store_rating"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        rating = _entity(tracker, "csat") or tracker.get_slot("csat")
        try:
            value: Optional[int] = int(float(rating))
        except (TypeError, ValueError):
            value = None
        value = value if value is not None and 1 <= value <= 5 else None
        resolved = survey_answer(_entity(tracker, "resolved"))
        comment = _entity(tracker, "comment")
        comment = str(comment).strip()[:COMMENT_MAX_CHARS] if comment is not None else ""
        if value is not None or resolved is not None or comment:
            rated = await tickets().rate(tracker.sender_id, value, resolved, comment or None)
            if rated is None:
                logger.info("survey of %s not stored: no resolved ticket", tracker.sender_id)
            if value is not None:
                try:
                    await risk_signals.rated(tracker, value, rated)
                except Exception:  # noqa: BLE001 - a rights signal never breaks the conversation
                    logger.warning("low-rating signal not sent")
        dispatcher.utter_message(response="utter_thanks_for_rating")
        return [SlotSet("csat", None)]


async def ticket_of_shopper(tracker: Tracker, ticket_id: str) -> Optional[Ticket]:
    """The ticket when it belongs to this conversation or to the same verified customer; else None,
    exactly as for a ticket that does not exist, so a ticket number reveals nothing to others."""
    ticket = await tickets().get(ticket_id)
    if ticket is None:
        return None
    if ticket.sender_id == tracker.sender_id:
        return ticket
    customer = await customer_of(tracker)
    return ticket if customer is not None and ticket.customer == customer else None


class ActionTicketStatus(Action):
    """「查一下工单 T…」 or just the ticket number: where the shopper's ticket stands, in Chinese."""

    def name(self) -> Text:
        return "action_ticket_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        ticket_id = _entity(tracker, "ticket_id") or ticket_id_in(tracker.latest_message.get("text") or "")
        if not ticket_id:
            dispatcher.utter_message(response="utter_ask_ticket_id")
            return []
        ticket_id = ticket_id_in(str(ticket_id)) or str(ticket_id)
        ticket = await ticket_of_shopper(tracker, ticket_id)
        if ticket is None:
            dispatcher.utter_message(response="utter_ticket_not_found", ticket_id=ticket_id)
            return []
        created = _local(ticket.created_at)
        if ticket.status == WAITING:
            position = await tickets().position(ticket.id) or 1
            dispatcher.utter_message(response="utter_ticket_waiting", ticket_id=ticket.id, created=created,
                                     category=ticket.category_label, position=position, wait=wait_minutes(position))
        elif ticket.status == CLAIMED:
            dispatcher.utter_message(response="utter_ticket_claimed", ticket_id=ticket.id, created=created,
                                     category=ticket.category_label)
        elif ticket.status == RESOLVED:
            dispatcher.utter_message(response="utter_ticket_resolved", ticket_id=ticket.id, created=created,
                                     category=ticket.category_label, resolved=_local(ticket.resolved_at))
        if ticket.callback:
            dispatcher.utter_message(response="utter_ticket_callback", phone=masked_phone(ticket.callback))
        return []


def _local(iso: Optional[str]) -> str:
    if not iso:
        return "—"
    return f"{dt.datetime.fromisoformat(iso).astimezone(SHANGHAI):%m月%d日 %H:%M}"
