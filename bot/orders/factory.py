"""Builds the configured order system (shared by the action server and the agent console)."""

from __future__ import annotations

import redis.asyncio as aioredis

from bot.orders.client import OrderSystem
from bot.orders.http_client import HttpOrderSystem
from bot.orders.redis_store import RedisOrderSystem
from bot.settings import Settings


def order_system_for(settings: Settings, redis: aioredis.Redis) -> OrderSystem:
    """ORDER_SYSTEM_BASE_URL selects the HTTP client; otherwise the embedded Redis store."""
    if settings.order_system_base_url:
        return HttpOrderSystem(settings.order_system_base_url, settings.order_system_token or "",
                               settings.order_system_timeout_s)
    return RedisOrderSystem(redis)
