"""Wiring for the action server: one order system and identity lookups per process.

Configuration comes from the environment (bot.settings): ORDER_SYSTEM_BASE_URL selects the
HTTP order-management client; otherwise the embedded Redis store at REDIS_URL is used and
seeded with demo orders dated relative to today.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from functools import lru_cache
from typing import Any, Dict, Iterable, Optional

import redis.asyncio as aioredis
from rasa_sdk import Tracker

from bot.handoff.tickets import TicketStore
from bot.identity import verify_customer_token
from bot.orders.client import OrderSystem
from bot.orders.demo import DEMO_CUSTOMERS, demo_orders
from bot.orders.factory import order_system_for
from bot.orders.models import SHANGHAI
from bot.orders.redis_store import PREFIX, RedisOrderSystem
from bot.settings import Settings

WECHAT_CHANNEL = "wechat"
_seeded = asyncio.Lock()
_seed_done = False


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()


def today() -> dt.date:
    return dt.datetime.now(SHANGHAI).date()


@lru_cache(maxsize=1)
def _redis() -> aioredis.Redis:
    return aioredis.Redis.from_url(settings().redis_url or "redis://127.0.0.1:6380/0",
                                   socket_timeout=3, socket_connect_timeout=3)


@lru_cache(maxsize=1)
def _order_system() -> OrderSystem:
    return order_system_for(settings(), _redis())


async def order_system() -> OrderSystem:
    """The order system; the embedded one is seeded with today's demo orders on first use."""
    global _seed_done
    system = _order_system()
    if isinstance(system, RedisOrderSystem) and not _seed_done:
        async with _seeded:
            if not _seed_done:
                await system.replace_demo_orders(DEMO_CUSTOMERS, demo_orders(today()))
                for customer_id, customer in DEMO_CUSTOMERS.items():
                    await _redis().set(f"{PREFIX}wechat:{customer['wechat_openid']}", customer_id)
                _seed_done = True
    return system


def _user_metadata(events: Iterable[Dict[str, Any]]) -> Iterable[Dict[str, Any]]:
    for event in reversed(list(events)):
        if event.get("event") in ("user", "session_started") and event.get("metadata"):
            yield event["metadata"]


async def customer_of(tracker: Tracker) -> Optional[str]:
    """The verified customer id behind this conversation, or None for an anonymous shopper."""
    secret = settings().store_signing_secret
    for metadata in _user_metadata(tracker.events):
        customer = verify_customer_token(metadata.get("customer_token"), secret or "")
        if customer:
            return customer
        openid = metadata.get("wechat_openid")
        # Only the WeChat channel, server side, may vouch for an openid.
        if openid and tracker.get_latest_input_channel() == WECHAT_CHANNEL:
            await order_system()
            bound = await _redis().get(f"{PREFIX}wechat:{openid}")
            if bound:
                return bound.decode()
    return None


@lru_cache(maxsize=1)
def tickets() -> TicketStore:
    return TicketStore(_redis())
