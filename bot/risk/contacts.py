"""Where a verified customer can be reached: their recent conversations, by channel.

A safety warning (bot.risk.warnings) goes to the shoppers who bought a product, which the order
system knows by customer id; what it does not know is which chat a customer uses. So whenever an
action verifies who a shopper is (actions/services.py `customer_of`), the conversation is
remembered here against the customer id. Only verified identities are remembered: a conversation
that merely claims a customer never gets that customer's warnings.

Per customer (`contacts:<customer id>` under the prefix), one sorted set of
`<channel>|<conversation id>` scored by when it was last seen (unix s), expiring CONTACT_TTL_DAYS
after the customer was last seen, at most MAX_CONVERSATIONS kept. The keys hold customer and
conversation ids (the shop's own data, like the order system), never anything the shopper wrote.
"""

from __future__ import annotations

import time
from typing import Dict, List, Optional

import redis.asyncio as aioredis

from bot.webchat.conversation_ids import WEB_NAMESPACE, WECHAT_NAMESPACE

WEB, WECHAT, REST = "web", "wechat", "rest"
CHANNELS = (WEB, WECHAT, REST)
CONTACT_TTL_DAYS = 180
MAX_CONVERSATIONS = 10
# Rasa's input channel names -> ours (the socket.io widget is the web chat).
_INPUT_CHANNELS = {"socketio": WEB, "wechat": WECHAT, "rest": REST}


def channel_of(conversation_id: str, input_channel: Optional[str] = None) -> str:
    """The channel a conversation lives in. Its namespace decides (bot.webchat.conversation_ids:
    every channel names its own conversations), the input channel only for a bare id."""
    if conversation_id.startswith(WECHAT_NAMESPACE):
        return WECHAT
    if conversation_id.startswith(WEB_NAMESPACE):
        return WEB
    if input_channel == "wechat":  # the WeChat channel always names its conversations `wx:`
        return REST
    return _INPUT_CHANNELS.get(input_channel or "", REST)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


class ContactBook:
    def __init__(self, redis: aioredis.Redis, prefix: str = "xb:risk:", ttl_days: float = CONTACT_TTL_DAYS) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl_s = max(1, int(ttl_days * 86400))

    def _key(self, customer_id: str) -> str:
        return f"{self._prefix}contacts:{customer_id}"

    async def remember(self, customer_id: str, conversation_id: str, channel: str, at: Optional[float] = None) -> None:
        """Notes that `customer_id` (verified) was just seen in `conversation_id` over `channel`."""
        if not customer_id or not conversation_id:
            return
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        key = self._key(customer_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {f"{channel}|{conversation_id}": at if at is not None else time.time()})
            pipe.zremrangebyrank(key, 0, -MAX_CONVERSATIONS - 1)  # keep the most recent ones
            pipe.expire(key, self._ttl_s)
            await pipe.execute()

    async def conversations_of(self, customer_id: str) -> List[Dict[str, object]]:
        """[{"conversation_id", "channel", "at"}], most recently seen first."""
        found = []
        for member, score in await self._redis.zrevrange(self._key(customer_id), 0, -1, withscores=True):
            channel, _, conversation = _text(member).partition("|")
            found.append({"conversation_id": conversation, "channel": channel, "at": score})
        return found
