"""Rights signals from the action server to the risk early warning (issue 15).

The actions call one helper each at the moment a signal happens: a complaint or safety ticket
opened (actions/handoff.py), a return submitted (actions/returns.py), a low rating
(actions/handoff.py), a rights question answered (actions/rights.py), a delivered order the
shopper never received (actions/orders.py). Each builds a RiskEvent (ids pseudonymised, text
masked: bot/risk/events.py) and appends it to the stream in the action server's Redis.

A signal is never worth a broken conversation: every helper swallows and logs its failures
(without personal data) and waits at most PUBLISH_TIMEOUT_S for Redis. Event ids are derived from
the ticket, return or order where there is one, so a retried action is counted once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any, Awaitable, Callable, Dict, Mapping, Optional, Sequence

from rasa_sdk import Tracker

import actions.returns
from actions import services
from bot.orders.models import Order, to_dict
from bot.risk.events import (COMPLAINT, LOW_CSAT, NOT_RECEIVED, RETURN, RIGHTS_QUESTION, SAFETY, RiskEvent,
                             new_event, pseudonym)
from bot.risk.signals import complaint_reason, order_naming, safety_reason, subject
from bot.risk.stream import PREFIX, RiskStream

logger = logging.getLogger(__name__)
PUBLISH_TIMEOUT_S = 1.0
LOW_RATING = 2  # a rating of 1 or 2 is a low CSAT
SIGNALLED_CATEGORIES = {"complaint": COMPLAINT, "safety": SAFETY}  # handoff categories that are rights signals


def never_fails(helper: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[bool]]:
    """A helper that returns False (and logs the error class only) instead of raising."""

    @functools.wraps(helper)
    async def guarded(*args: Any, **kwargs: Any) -> bool:
        try:
            return bool(await helper(*args, **kwargs))
        except Exception as error:  # noqa: BLE001 - a rights signal never breaks the conversation
            logger.warning("rights signal %s not sent: %s", helper.__name__, type(error).__name__)
            return False

    return guarded


async def emit(event: Optional[RiskEvent]) -> bool:
    """Appends the event to the stream (False when there is none, or Redis cannot take it)."""
    if event is None:
        return False
    try:
        return await asyncio.wait_for(RiskStream(services._redis(), PREFIX).publish(event), PUBLISH_TIMEOUT_S)
    except asyncio.TimeoutError:
        logger.warning("rights event (%s) not published: Redis too slow", event.kind)
        return False


def channel_of(tracker: Tracker) -> str:
    return tracker.get_latest_input_channel() or "unknown"


def order_dict(order: Any) -> Optional[Dict[str, Any]]:
    if order is None:
        return None
    return to_dict(order) if isinstance(order, Order) else dict(order)


def escalation_event(category: str, text: str, channel: str, order: Optional[Mapping[str, Any]],
                     customer: Optional[str], ticket_id: str) -> Optional[RiskEvent]:
    """A complaint or safety ticket as an event (None for other handoffs: a request for a person
    or a failed form is not a rights signal). A safety report is about the item it names."""
    kind = SIGNALLED_CATEGORIES.get(category)
    if kind is None:
        return None
    reason = safety_reason(text) if kind == SAFETY else complaint_reason(text)
    return new_event(kind, reason, channel, **subject(order, text), order_id=(order or {}).get("order_id"),
                     customer_id=customer, ticket=ticket_id, text=text, event_id=f"ticket-{ticket_id}")


def return_events(order: Order, item_ids: Sequence[str], reason: str, channel: str, return_id: str,
                  text: str = "") -> list:
    """One event per returned item, with its SKU, merchant and category."""
    events = []
    for item_id in item_ids:
        item = order.item(item_id)
        if item is None:
            continue
        events.append(new_event(RETURN, reason, channel, sku=item.sku, merchant=item.merchant,
                                category=item.category, order_id=order.order_id, customer_id=order.customer_id,
                                text=text, event_id=f"return-{return_id}-{item_id}"))
    return events


@never_fails
async def escalated(tracker: Tracker, ticket: Any, text: str, order: Optional[Mapping[str, Any]]) -> bool:
    """ActionEscalate opened a ticket; `text` is what the shopper said about it. Without an order
    in the conversation, a verified shopper's order whose item the text names is the one."""
    if ticket.category not in SIGNALLED_CATEGORIES:
        return False
    if order is None and ticket.customer:
        order = await order_named_by(ticket.customer, text)
    return await emit(escalation_event(ticket.category, text, channel_of(tracker), order, ticket.customer, ticket.id))


async def order_named_by(customer: str, text: str) -> Optional[Dict[str, Any]]:
    """None when the order system cannot say within PUBLISH_TIMEOUT_S: the signal goes without."""
    try:
        orders = await asyncio.wait_for(_orders_of(customer), PUBLISH_TIMEOUT_S)
    except Exception as error:  # noqa: BLE001 - the signal is sent without its order
        logger.warning("orders for a rights signal not read: %s", type(error).__name__)
        return None
    return order_naming(text, [to_dict(o) for o in orders])


async def _orders_of(customer: str) -> list:
    return await (await services.order_system()).orders_of(customer)


@never_fails
async def return_submitted(tracker: Tracker, order: Order, item_ids: Sequence[str], reason: str,
                           return_id: str) -> bool:
    """ActionSubmitReturn opened a return; what the shopper wrote about it is the excerpt."""
    described = "；".join(e[len("text:"):] for e in tracker.get_slot("return_evidence") or []
                         if isinstance(e, str) and e.startswith("text:"))
    sent = [await emit(e) for e in return_events(order, item_ids, reason, channel_of(tracker), return_id, described)]
    return bool(sent) and all(sent)


@never_fails
async def rated(tracker: Tracker, rating: int, ticket: Any) -> bool:
    """ActionStoreRating: a rating of 1 or 2 on a resolved ticket is a low CSAT of its category."""
    if ticket is None or rating > LOW_RATING:
        return False
    order = (ticket.evidence or {}).get("order")
    event = new_event(LOW_CSAT, ticket.category, channel_of(tracker), **subject(order, ticket.summary),
                      order_id=ticket.order_id, customer_id=ticket.customer, ticket=ticket.id,
                      event_id=f"csat-{ticket.id}")
    return await emit(event)


@never_fails
async def rights_question(tracker: Tracker, entry_id: str) -> bool:
    """ActionAnswerQuestion answered from the knowledge base: the entry is the topic."""
    text = tracker.latest_message.get("text") or ""
    order = await conversation_order(tracker)
    return await emit(new_event(RIGHTS_QUESTION, entry_id, channel_of(tracker), **subject(order_dict(order), text),
                                order_id=order.order_id if order else None,
                                customer_id=order.customer_id if order else None, text=text))


@never_fails
async def not_received(tracker: Tracker, order: Order) -> bool:
    """show_order told a shopper whose order shows as signed for what to do: counted once per
    conversation and order."""
    text = tracker.latest_message.get("text") or ""
    event_id = "nr-" + (pseudonym(f"{tracker.sender_id}|{order.order_id}") or "")
    return await emit(new_event(NOT_RECEIVED, "signed_not_received", channel_of(tracker),
                                **subject(order_dict(order), text), order_id=order.order_id,
                                customer_id=order.customer_id, text=text, event_id=event_id))


async def conversation_order(tracker: Tracker) -> Optional[Order]:
    """The conversation's order (slot order_id), if this shopper may see it; None when the order
    system cannot say within PUBLISH_TIMEOUT_S (the signal goes without)."""
    order_id = tracker.get_slot("order_id")
    if not order_id:
        return None
    try:
        return await asyncio.wait_for(actions.returns.owned_order(tracker, order_id), PUBLISH_TIMEOUT_S)
    except Exception as error:  # noqa: BLE001 - the signal is sent without its order
        logger.warning("order for a rights signal not read: %s", type(error).__name__)
        return None
