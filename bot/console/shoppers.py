"""What the console learns of, and tells, the shopper's web chat outside the conversation itself.

- Presence (contract B): the Rasa process records `xb:presence:<conversation>` (online, TTL 45 s)
  and `xb:typing:<conversation>` (typing, TTL 6 s) and publishes changes on `xb:presence`.
- `agent_typing` goes to the shopper's socket.io room through python-socketio's Redis manager,
  as JSON (never pickles): bot.socketio_redis.JsonRedisManager, write-only, the same manager the
  Rasa process listens with (that module imports no Rasa).
"""

from __future__ import annotations

from typing import Any, Dict

import redis.asyncio as aioredis

from bot.socketio_redis import PRESENCE_CHANNEL, REDIS_CHANNEL, JsonRedisManager, presence_key, typing_key


async def shopper_presence(redis: aioredis.Redis, conversation: str) -> Dict[str, bool]:
    """{"online", "typing"} of a conversation's shopper, as the Rasa process recorded them."""
    online, typing = await redis.mget(presence_key(conversation), typing_key(conversation))
    return {"online": online is not None, "typing": typing is not None}


class JsonEmitter(JsonRedisManager):
    """The console's write-only end of the shoppers' socket.io rooms (JSON, like the Rasa side)."""

    def __init__(self, url: str, channel: str = REDIS_CHANNEL) -> None:
        super().__init__(url, channel=channel, write_only=True)

    async def to_shopper(self, conversation: str, event: str, data: Dict[str, Any]) -> None:
        await self.emit(event, data, namespace="/", room=conversation)

    async def close(self) -> None:
        await self.redis.aclose() if hasattr(self.redis, "aclose") else await self.redis.close()
