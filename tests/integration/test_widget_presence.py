"""Contract (B): the widget's `user_typing` and `presence` events, as the console reads them from Redis.

Every field of these events is the client's: only a validly signed session names a conversation.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import redis.asyncio as aioredis

from tests.integration.conftest import socket_session

pytestmark = pytest.mark.integration


async def until(check, timeout=10.0):
    for _ in range(int(timeout / 0.05)):
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_typing_and_presence_are_recorded_published_and_cleared_on_disconnect(stack):
    redis = aioredis.Redis.from_url(stack.redis_url, decode_responses=True)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("xb:presence")
    try:
        async with socket_session(stack) as (client, _replies, issued, conversation):
            other_session, forged = "f" * 32, issued.split(".")[0] + ".AAAA"
            await client.emit("user_typing", {"session_id": forged, "typing": True})
            await client.emit("user_typing", {"session_id": f"{other_session}.{issued.split('.')[1]}", "typing": True})
            await client.emit("user_typing", ["not", "a", "dict"])
            await asyncio.sleep(0.5)
            assert await redis.get(f"xb:typing:{conversation}") is None
            assert await redis.get(f"xb:typing:web:{other_session}") is None

            await client.emit("user_typing", {"session_id": issued, "typing": True})
            assert await until(lambda: redis.exists(f"xb:typing:{conversation}"))
            assert await redis.get(f"xb:typing:{conversation}") == "1"
            assert 0 < await redis.ttl(f"xb:typing:{conversation}") <= 6
            await client.emit("user_typing", {"session_id": issued, "typing": False})
            assert await until(lambda: _gone(redis, f"xb:typing:{conversation}"))

            await client.emit("presence", {"session_id": issued})
            assert await until(lambda: redis.exists(f"xb:presence:{conversation}"))
            assert 0 < await redis.ttl(f"xb:presence:{conversation}") <= 45
        assert await until(lambda: _gone(redis, f"xb:presence:{conversation}"))

        published = []
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:  # None also stands for the subscription's confirmation
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message is not None:
                published.append(json.loads(message["data"]))
        mine = [m for m in published if m["conversation"] == conversation]
        assert {"conversation": conversation, "online": True, "typing": True} in mine
        assert {"conversation": conversation, "online": True, "typing": False} in mine
        assert mine[-1] == {"conversation": conversation, "online": False, "typing": False}
        assert not [m for m in published if m["conversation"] == f"web:{other_session}"]
    finally:
        await pubsub.close()
        await redis.close()


async def _gone(redis, key):
    return not await redis.exists(key)


async def test_a_flood_of_typing_events_is_not_a_flood_of_writes(stack):
    """An attacker's socket toggling `user_typing` as fast as it can: a few writes a second reach
    Redis and the consoles (a dropped 「typing: false」 still ends: the key lives 6 s)."""
    redis = aioredis.Redis.from_url(stack.redis_url, decode_responses=True)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("xb:presence")
    try:
        async with socket_session(stack) as (client, _replies, issued, conversation):
            started = time.monotonic()
            for n in range(300):
                await client.emit("user_typing", {"session_id": issued, "typing": n % 2 == 0})
            await asyncio.sleep(0.3)
            elapsed = time.monotonic() - started
            published = []
            deadline = time.monotonic() + 1
            while time.monotonic() < deadline:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                if message is not None:
                    published.append(json.loads(message["data"]))
            typing_states = [m for m in published if m["conversation"] == conversation and m["online"]]
            # one from session_request, then at most 4 a second of the burst
            assert len(typing_states) <= 1 + 4 * (int(elapsed) + 1), (len(typing_states), elapsed)
    finally:
        await pubsub.close()
        await redis.close()
