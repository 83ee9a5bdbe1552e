"""Order status and logistics, return status, and short answers outside any form."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any, Dict, List, Optional, Text

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import risk_signals
from actions.buttons import stale_button
from actions.handoff import callback_number, masked_phone, wait_minutes
from actions.returns import LAST4_DIGITS, Verification, inform_payload, owned_order, verify_phone_digits
from actions.services import customer_of, order_system, tickets
from actions.turns import ends_turn
from bot.orders.client import OrderSystemUnavailable
from bot.orders.models import SHANGHAI, Order, OrderStatus
from bot.paths import KNOWLEDGE_DIR

PENDING_SLOT = "pending_lookup"
logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def labels() -> Dict[str, Any]:
    return yaml.safe_load((KNOWLEDGE_DIR / "order_labels.yml").read_text(encoding="utf-8"))


def order_summary(order: Order) -> str:
    status = labels()["order_status"][order.status]
    lines = [f"订单 {order.order_id}（{'、'.join(i.name for i in order.items)}）：{status}"]
    for event in order.logistics[-3:][::-1]:
        lines.append(f"· {event.time.astimezone(SHANGHAI):%m-%d %H:%M} {event.description}")
    return "\n".join(lines)


def mentions(text: str, key: str) -> bool:
    return any(word in text for word in labels()[key])


async def show_order(dispatcher: CollectingDispatcher, tracker: Tracker, order: Order) -> None:
    dispatcher.utter_message(response="utter_order_detail", summary=order_summary(order))
    if order.status == OrderStatus.DELIVERED and mentions(tracker.latest_message.get("text") or "", "not_received_words"):
        dispatcher.utter_message(response="utter_delivered_not_received")
        dispatcher.utter_message(response="utter_offer_complain")
        try:
            await risk_signals.not_received(tracker, order)
        except Exception:  # noqa: BLE001 - a rights signal never breaks the conversation
            logger.warning("not-received signal not sent")


class ActionOrderStatus(Action):
    def name(self) -> Text:
        return "action_order_status"

    @ends_turn
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        try:
            return await self._run(dispatcher, tracker)
        except OrderSystemUnavailable:
            dispatcher.utter_message(response="utter_order_lookup_down")
            return []

    async def _run(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> List[Dict[Text, Any]]:
        text = tracker.latest_message.get("text") or ""
        named = next(tracker.get_latest_entity_values("order_id"), None)
        customer = await customer_of(tracker)
        if not named and mentions(text, "return_words") and customer is not None:
            return await self._show_returns(dispatcher, customer)
        switching = (tracker.latest_message.get("intent") or {}).get("name") == "switch_order"
        order_id = named or (None if switching else tracker.get_slot("order_id"))
        if order_id:
            order = await owned_order(tracker, order_id)
            if order is not None:
                await show_order(dispatcher, tracker, order)
                return []
            if customer is None:  # ask for phone digits whether or not the order exists: no leak
                dispatcher.utter_message(response="utter_ask_phone_last4")
                return [SlotSet(PENDING_SLOT, order_id)]
            dispatcher.utter_message(response="utter_order_not_found")
            return [SlotSet("order_id", None)]
        if customer is None:
            dispatcher.utter_message(response="utter_ask_order_id_number")
            return []
        orders = (await (await order_system()).orders_of(customer))[:5]
        if not orders:
            dispatcher.utter_message(response="utter_no_orders")
            return []
        buttons = [{"title": f"{labels()['order_status'][o.status]} · {o.items[0].name}等{len(o.items)}件",
                    "payload": "/order_status" + inform_payload(order_id=o.order_id)[len("/inform"):]}
                   for o in orders]
        dispatcher.utter_message(response="utter_pick_order_status", buttons=buttons)
        return []

    async def _show_returns(self, dispatcher: CollectingDispatcher, customer: str) -> List[Dict[Text, Any]]:
        returns = await (await order_system()).returns_of(customer)
        if not returns:
            dispatcher.utter_message(response="utter_no_returns")
            return []
        lines = "\n".join(
            f"· {r.return_id}（订单 {r.order_id}，{labels()['return_kind'][r.kind]}）：{labels()['return_status'][r.status]}"
            for r in returns[:5]
        )
        dispatcher.utter_message(response="utter_returns_list", lines=lines)
        return []


class ActionHandleInform(Action):
    """Short answers outside a form: phone digits for a pending lookup, or an order number."""

    def name(self) -> Text:
        return "action_handle_inform"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        if stale_button(tracker):  # an old 「订单…」/ item button after its question was answered
            dispatcher.utter_message(response="utter_button_expired")
            return []
        phone = callback_number(tracker.latest_message.get("text") or "")
        ticket = await tickets().open_ticket_for(tracker.sender_id) if phone else None
        if ticket is not None:  # a number left for the callback offered while waiting for a person
            await self._record_callback(dispatcher, ticket, phone)
            return []
        pending: Optional[str] = tracker.get_slot(PENDING_SLOT)
        digits = LAST4_DIGITS.search(tracker.latest_message.get("text") or "")
        if pending and digits:
            try:
                order = await (await order_system()).order(pending)
            except OrderSystemUnavailable:
                dispatcher.utter_message(response="utter_order_lookup_down")
                return []
            outcome = await verify_phone_digits(tracker, pending, order, digits.group(1))
            if outcome is Verification.UNAVAILABLE:
                dispatcher.utter_message(response="utter_order_lookup_down")
                return []
            if outcome is Verification.LOCKED:  # too many wrong guesses for this order today
                dispatcher.utter_message(response="utter_order_verify_locked")
                return [SlotSet(PENDING_SLOT, None)]
            if outcome is not Verification.VERIFIED:
                dispatcher.utter_message(response="utter_order_not_found")
                return [SlotSet(PENDING_SLOT, None)]
            await show_order(dispatcher, tracker, order)
            verified = list(tracker.get_slot("verified_order_ids") or []) + [pending]
            return [SlotSet(PENDING_SLOT, None), SlotSet("verified_order_ids", verified)]
        if next(tracker.get_latest_entity_values("order_id"), None):
            dispatcher.utter_message(response="utter_got_order_id", order_id=tracker.get_slot("order_id"))
            return []
        dispatcher.utter_message(response="utter_inform_no_context")
        return []

    @staticmethod
    async def _record_callback(dispatcher: CollectingDispatcher, ticket: Any, phone: str) -> None:
        """Keeps the number on the ticket (the agent sees it), confirms it masked, and says what
        happens next with the shopper's real place in the queue."""
        await tickets().set_callback(ticket.id, phone)
        await tickets().add_note(ticket.id, "小保", f"顾客请求回电：{phone}")
        logger.info("callback number %s left on ticket %s", masked_phone(phone), ticket.id)
        position = await tickets().position(ticket.id)
        if position is None:
            dispatcher.utter_message(response="utter_callback_recorded_claimed", ticket_id=ticket.id,
                                     phone=masked_phone(phone))
            return
        dispatcher.utter_message(response="utter_callback_recorded", ticket_id=ticket.id, phone=masked_phone(phone),
                                 position=position, wait=wait_minutes(position))
