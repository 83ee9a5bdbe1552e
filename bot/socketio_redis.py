"""python-socketio over Redis, as JSON, and the keys of the shopper's presence (contract B).

Light on purpose (no Rasa, no TensorFlow): the Rasa process's socket.io channel
(bot.channels.socketio, which records presence with PresenceRecorder) and the agent console
(bot.console.shoppers, which reads it and only writes to a shopper's room) share the same manager
and the same keys.
"""

from __future__ import annotations

import json
import logging
from typing import Any, AsyncIterator, Callable, Dict

import socketio
from redis.exceptions import RedisError

from bot.redis_url import async_redis

REDIS_CHANNEL = "xiaobao-socketio"  # python-socketio's channel between the Rasa replicas and the console
PRESENCE_CHANNEL = "xb:presence"  # {"conversation", "online", "typing"} for the console
PRESENCE_TTL_S = 45
TYPING_TTL_S = 6
logger = logging.getLogger(__name__)


def presence_key(conversation: str) -> str:
    """Set while the shopper's page is open (the widget's `presence`, TTL 45 s)."""
    return f"xb:presence:{conversation}"


def typing_key(conversation: str) -> str:
    """Set while the shopper types (the widget's `user_typing`, TTL 6 s)."""
    return f"xb:typing:{conversation}"


class JsonRedisManager(socketio.AsyncRedisManager):
    """python-socketio's Redis client manager, exchanging JSON instead of pickles.

    The stock manager unpickles whatever arrives on its Redis channel (CVE-2025-61765), so anyone
    able to publish there could run code in Rasa. Here messages go out as JSON and only JSON
    objects are accepted; anything else is logged and dropped before python-socketio sees it.
    """

    def _redis_connect(self) -> None:  # REDIS_URL may name a Sentinel deployment
        self.redis = async_redis(self.redis_url, **self.redis_options)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)

    async def _publish(self, data: Dict[str, Any]) -> Any:
        try:
            return await self.redis.publish(self.channel, json.dumps(data, ensure_ascii=False))
        except RedisError:
            self._redis_connect()
            return await self.redis.publish(self.channel, json.dumps(data, ensure_ascii=False))

    async def _listen(self) -> AsyncIterator[Dict[str, Any]]:
        async for raw in super()._listen():
            try:
                message = json.loads(raw)
            except (TypeError, ValueError):
                message = None
            if isinstance(message, dict):
                yield message
            else:
                logger.warning("dropped a message on %s that is not a JSON object", self.channel)


class PresenceRecorder:
    """The shopper's online and typing state, in Redis, as the console reads it (contract B).

    Best effort: a state that cannot be recorded is logged and dropped, never an error to the widget.
    """

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def _record(self, conversation: str, online: bool, typing: bool, writes: Callable[[Any], None]) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                writes(pipe)
                pipe.publish(PRESENCE_CHANNEL, json.dumps({"conversation": conversation, "online": online,
                                                           "typing": typing}, ensure_ascii=False))
                await pipe.execute()
        except (RedisError, OSError) as error:
            logger.warning("shopper presence not recorded: %s", type(error).__name__)

    async def seen(self, conversation: str, now: float) -> None:
        try:
            typing = bool(await self.redis.exists(f"xb:typing:{conversation}"))
        except (RedisError, OSError):
            typing = False
        await self._record(conversation, True, typing, lambda pipe: pipe.set(
            f"xb:presence:{conversation}", str(int(now)), ex=PRESENCE_TTL_S))

    async def typing(self, conversation: str, typing: bool, now: float) -> None:
        def writes(pipe: Any) -> None:
            pipe.set(f"xb:presence:{conversation}", str(int(now)), ex=PRESENCE_TTL_S)
            if typing:
                pipe.set(f"xb:typing:{conversation}", "1", ex=TYPING_TTL_S)
            else:
                pipe.delete(f"xb:typing:{conversation}")

        await self._record(conversation, True, typing, writes)

    async def gone(self, conversation: str) -> None:
        await self._record(conversation, False, False, lambda pipe: pipe.delete(
            f"xb:presence:{conversation}", f"xb:typing:{conversation}"))
