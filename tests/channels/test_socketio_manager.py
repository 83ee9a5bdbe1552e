"""The socket.io Redis manager exchanges JSON and drops anything else (never unpickles)."""

from __future__ import annotations

import asyncio
import pickle
import uuid

import redis.asyncio as aioredis

from bot.channels.socketio import JsonRedisManager


class Boom:
    def __reduce__(self):  # unpickling this would run code
        return (exec, ("raise SystemExit('unpickled')",))


async def test_published_messages_are_json_and_pickles_are_dropped(redis_url):
    channel = f"test-socketio-{uuid.uuid4().hex}"
    manager = JsonRedisManager(redis_url, channel=channel)
    received = []

    async def listen():
        async for message in manager._listen():
            received.append(message)

    listener = asyncio.create_task(listen())
    await asyncio.sleep(0.3)  # subscribed
    client = aioredis.Redis.from_url(redis_url)
    await client.publish(channel, pickle.dumps(Boom()))
    await client.publish(channel, b"[1, 2]")
    await manager._publish({"method": "emit", "event": "bot_uttered", "data": {"text": "您好"}})
    for _ in range(50):
        if received:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    listener.cancel()
    await client.close()
    assert received == [{"method": "emit", "event": "bot_uttered", "data": {"text": "您好"}}]
