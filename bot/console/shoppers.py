"""What the console learns of, and tells, the shopper's web chat outside the conversation itself.

- Presence (contract B): the Rasa process records `xb:presence:<conversation>` (online, TTL 45 s)
  and `xb:typing:<conversation>` (typing, TTL 6 s) and publishes changes on `xb:presence`.
- `agent_typing` goes to the shopper's socket.io room through python-socketio's Redis manager,
  as JSON (never pickles). bot.channels.socketio.JsonRedisManager does the same, but its module
  imports Rasa and TensorFlow (seconds and hundreds of MB): the console, which only writes,
  publishes the same JSON with this write-only manager instead.
"""

from __future__ import annotations

import json
from typing import Any, Dict

import redis.asyncio as aioredis
import socketio

from bot.redis_url import async_redis

PRESENCE_CHANNEL = "xb:presence"
SOCKETIO_CHANNEL = "xiaobao-socketio"  # bot.channels.socketio.REDIS_CHANNEL


def presence_key(conversation: str) -> str:
    return f"xb:presence:{conversation}"


def typing_key(conversation: str) -> str:
    return f"xb:typing:{conversation}"


async def shopper_presence(redis: aioredis.Redis, conversation: str) -> Dict[str, bool]:
    """{"online", "typing"} of a conversation's shopper, as the Rasa process recorded them."""
    online, typing = await redis.mget(presence_key(conversation), typing_key(conversation))
    return {"online": online is not None, "typing": typing is not None}


class JsonEmitter(socketio.AsyncRedisManager):
    """A write-only python-socketio Redis manager that publishes JSON (the Rasa side's
    JsonRedisManager reads it)."""

    def __init__(self, url: str, channel: str = SOCKETIO_CHANNEL) -> None:
        super().__init__(url, channel=channel, write_only=True)

    def _redis_connect(self) -> None:  # REDIS_URL may name a Sentinel deployment
        self.redis = async_redis(self.redis_url, **self.redis_options)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)

    async def _publish(self, data: Dict[str, Any]) -> Any:
        return await self.redis.publish(self.channel, json.dumps(data, ensure_ascii=False))

    async def to_shopper(self, conversation: str, event: str, data: Dict[str, Any]) -> None:
        await self.emit(event, data, namespace="/", room=conversation)

    async def close(self) -> None:
        await self.redis.aclose() if hasattr(self.redis, "aclose") else await self.redis.close()
