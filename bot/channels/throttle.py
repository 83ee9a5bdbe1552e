"""One per-sender rate limit for every channel, shared by all Rasa replicas through Redis.

A sender may send `limit` messages per window (SENDER_MAX_PER_SECOND, per second). The count is
one Lua script (INCR, and PEXPIRE on the first message of a window), so replicas never race and
no counter outlives its window. The first message over the limit gets one polite notice; the
rest of the window is dropped silently, before NLU or the dialogue run. When Redis cannot be
reached the limiter lets everything through: a shopper is never refused because of an outage.

`limit_body_size` caps the size of every HTTP body and websocket message Rasa accepts
(MAX_BODY_BYTES; Sanic's own default is 100 MB), so a huge request is refused with HTTP 413 before
it is read, let alone parsed.
"""

from __future__ import annotations

import enum
import logging
from functools import lru_cache
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from rasa.core.channels.channel import UserMessage
from sanic import Blueprint

from bot.channels.polite import MessageHandler, system_message
from bot.redis_url import async_redis
from bot.settings import Settings

logger = logging.getLogger(__name__)
PREFIX = "xb:throttle:"
WINDOW_MS = 1000
_COUNT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return count
"""


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    NOTIFY = "notify"  # the first message over the limit in this window: tell the sender once
    DROP = "drop"


class SenderLimiter:
    def __init__(self, redis: aioredis.Redis, limit: int, window_ms: int = WINDOW_MS) -> None:
        self.limit, self.window_ms = limit, window_ms
        self._count = redis.register_script(_COUNT)

    @classmethod
    def from_env(cls) -> "SenderLimiter":
        settings = Settings.from_env()
        redis = async_redis(settings.redis_url or "redis://127.0.0.1:6380/0",
                                        socket_timeout=0.5, socket_connect_timeout=0.5)
        return cls(redis, settings.sender_max_per_second)

    async def check(self, sender_id: str) -> Verdict:
        if self.limit <= 0:
            return Verdict.ALLOWED
        try:
            count = await self._count(keys=[PREFIX + sender_id], args=[self.window_ms])
        except (RedisError, OSError) as error:
            logger.warning("rate limit not checked, Redis unreachable (%s); letting the message through", error)
            return Verdict.ALLOWED
        if count <= self.limit:
            return Verdict.ALLOWED
        if count == self.limit + 1:
            logger.warning("conversation %s sends more than %d messages a second; limiting it", sender_id, self.limit)
            return Verdict.NOTIFY
        return Verdict.DROP


@lru_cache(maxsize=1)
def shared_limiter() -> SenderLimiter:
    """One limiter, with one Redis client, for the REST and socket.io channels of this process."""
    return SenderLimiter.from_env()


def throttled(on_new_message: MessageHandler, limiter: SenderLimiter) -> MessageHandler:
    """Passes a sender's messages on while within the limit; over it, one notice, then nothing."""

    async def handle(message: UserMessage) -> Any:
        verdict = await limiter.check(message.sender_id)
        if verdict is Verdict.ALLOWED:
            return await on_new_message(message)
        if verdict is Verdict.NOTIFY and message.output_channel is not None:
            await message.output_channel.send_text_message(message.sender_id, system_message("slow_down"))
        return None

    return handle


def limit_body_size(blueprint: Blueprint) -> Blueprint:
    """Sets Rasa's app-wide body and websocket-message limits (MAX_BODY_BYTES) before it serves.

    Sanic's protocol reads REQUEST_MAX_SIZE for each new connection, so setting it before the
    server starts covers every route (channels and Rasa's HTTP API alike).
    """

    @blueprint.listener("before_server_start")
    async def set_limits(app: Any, _loop: Any) -> None:
        limit = Settings.from_env().max_body_bytes
        app.config.REQUEST_MAX_SIZE = min(app.config.REQUEST_MAX_SIZE, limit)
        app.config.WEBSOCKET_MAX_SIZE = min(app.config.WEBSOCKET_MAX_SIZE, limit)

    return blueprint
