"""Wiring for the action server: one order system and identity lookups per process.

Configuration comes from the environment (bot.settings): ORDER_SYSTEM_BASE_URL selects the
HTTP order-management client; otherwise the embedded Redis store at REDIS_URL is used and
seeded with demo orders dated relative to today (and the demo customers' WeChat bindings).
WeChat openid bindings come from bot.identity_bindings (IDENTITY_BASE_URL selects the HTTP
identity service; otherwise Redis), whichever order system is configured.

The action server does not import Rasa (tests/actions/test_no_rasa_import.py): only rasa_sdk.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from functools import lru_cache
from typing import Any, Dict, List, Optional

import redis.asyncio as aioredis
from rasa_sdk import Tracker
from redis.exceptions import RedisError

from bot.handoff.tickets import TicketStore
from bot.identity import verify_customer_token
from bot.identity_bindings import (IdentityBindings, IdentityUnavailable, RedisIdentityBindings,
                                    identity_bindings_for)
from bot.orders.client import OrderSystem
from bot.orders.demo import DEMO_CUSTOMERS, demo_orders
from bot.orders.factory import order_system_for
from bot.orders.models import SHANGHAI
from bot.orders.redis_store import RedisOrderSystem
from bot.redis_url import async_redis
from bot.risk.contacts import CONTACT_TTL_DAYS, ContactBook, channel_of
from bot.settings import Settings
from bot.stores.eventlog import session_events

logger = logging.getLogger(__name__)

WECHAT_CHANNEL = "wechat"
CONTACT_TIMEOUT_S = 1.0
_seeded = asyncio.Lock()
_seed_done = False


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()


def today() -> dt.date:
    return dt.datetime.now(SHANGHAI).date()


@lru_cache(maxsize=1)
def _redis() -> aioredis.Redis:
    return async_redis(settings().redis_url or "redis://127.0.0.1:6380/0",
                                   socket_timeout=3, socket_connect_timeout=3)


def limits_redis() -> aioredis.Redis:
    """The Redis holding the shared rate limits and upload records (bot.limits)."""
    return _redis()


async def session_so_far(tracker: Tracker) -> List[Dict[str, Any]]:
    """Every event of the conversation's latest session, this turn's included.

    The tracker an action receives is Rasa's working window (WINDOW_TURNS in bot.stores.redis);
    evidence for a person (the transcript, every photo) comes from the full event log in Redis,
    plus the events of this turn that are not saved yet. If Redis cannot be read, the window.
    """
    try:
        stored = await session_events(_redis(), tracker.sender_id)
    except (RedisError, OSError):
        logger.warning("could not read the event log of %s; using the working window", tracker.sender_id)
        return list(tracker.events)
    last = max((event.get("timestamp") or 0 for event in stored), default=float("-inf"))
    return stored + [event for event in tracker.events if (event.get("timestamp") or 0) > last]


@lru_cache(maxsize=1)
def _order_system() -> OrderSystem:
    return order_system_for(settings(), _redis())


@lru_cache(maxsize=1)
def identity_bindings() -> IdentityBindings:
    return identity_bindings_for(_redis())


async def order_system() -> OrderSystem:
    """The order system; the embedded one is seeded with today's demo orders on first use."""
    global _seed_done
    system = _order_system()
    if isinstance(system, RedisOrderSystem) and not _seed_done:
        async with _seeded:
            if not _seed_done:
                await system.replace_demo_orders(DEMO_CUSTOMERS, demo_orders(today()))
                if isinstance(identity_bindings(), RedisIdentityBindings):  # never into a real service
                    for customer_id, customer in DEMO_CUSTOMERS.items():
                        await identity_bindings().bind_openid(customer["wechat_openid"], customer_id)
                _seed_done = True
    return system


def latest_user_event(tracker: Tracker) -> Dict[str, Any]:
    """The latest user message, with the metadata and input channel it arrived with."""
    return next((e for e in reversed(tracker.events) if e.get("event") == "user"), None) or {}


@lru_cache(maxsize=1)
def contact_book() -> ContactBook:
    """Where verified customers were seen, for safety warnings (RISK_CONTACT_TTL_DAYS, default 180)."""
    return ContactBook(_redis(), ttl_days=float(os.environ.get("RISK_CONTACT_TTL_DAYS") or CONTACT_TTL_DAYS))


async def customer_of(tracker: Tracker) -> Optional[str]:
    """The verified customer id behind this conversation (see `_verified_customer`), or None.

    A verified customer's conversation is remembered (bot.risk.contacts), so a safety warning about
    a product they bought can reach them here. That bookkeeping never fails the answer, and
    delays it by at most CONTACT_TIMEOUT_S when Redis is slow.
    """
    customer = await _verified_customer(tracker)
    if customer:
        await _remember_contact(customer, tracker)
    return customer


async def _remember_contact(customer: str, tracker: Tracker) -> None:
    try:
        channel = channel_of(tracker.sender_id, latest_user_event(tracker).get("input_channel"))
        await asyncio.wait_for(contact_book().remember(customer, tracker.sender_id, channel), CONTACT_TIMEOUT_S)
    except Exception as error:  # noqa: BLE001 - a missed contact must never cost the shopper an answer
        logger.warning("could not remember where customer was seen: %r", error)


async def _verified_customer(tracker: Tracker) -> Optional[str]:
    """The verified customer id behind this conversation, or None for an anonymous shopper.

    Identity only ever comes from the channel that authenticated it, in the message it vouched
    for: never from an earlier message, which may have come over another channel.
    - A signed customer token (its own proof) in the latest message, or in the metadata the
      session started with (a slot, so it survives the cut of the working window).
    - A WeChat openid only from the latest message, and only when that message came in over the
      WeChat channel, which sets `wechat_openid` itself (the REST channel strips it).
    """
    secret = settings().store_signing_secret
    latest = latest_user_event(tracker)
    metadata = latest.get("metadata") if isinstance(latest.get("metadata"), dict) else {}
    started = tracker.get_slot("session_started_metadata") or {}
    for source in (metadata, started if isinstance(started, dict) else {}):
        customer = verify_customer_token(source.get("customer_token"), secret or "")
        if customer:
            return customer
    openid = metadata.get("wechat_openid")
    if not openid or not isinstance(openid, str) or latest.get("input_channel") != WECHAT_CHANNEL:
        return None
    await order_system()  # the embedded demo binds its demo customers on first use
    try:
        return await identity_bindings().customer_for_openid(openid) or None
    except IdentityUnavailable as error:
        logger.warning("could not look up a WeChat binding: %s", error)
        return None


@lru_cache(maxsize=1)
def tickets() -> TicketStore:
    return TicketStore(_redis())
