"""The per-sender rate limit shared by every channel, against a real Redis."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis.asyncio as aioredis
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

from bot.channels.polite import system_message
from bot.channels.throttle import PREFIX, SenderLimiter, Verdict, throttled
from tests.conftest import free_port


@pytest.fixture
async def replicas(redis_url):
    """Two limiters with their own Redis clients, like two Rasa processes sharing one Redis."""
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
    yield [SenderLimiter(client, limit=5) for client in clients]
    for client in clients:
        await client.close()


def sender() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"


async def test_five_a_window_then_one_notice_then_silence(replicas):
    limiter, flooder, other = replicas[0], sender(), sender()
    verdicts = [await limiter.check(flooder) for _ in range(8)]
    assert verdicts == [Verdict.ALLOWED] * 5 + [Verdict.NOTIFY] + [Verdict.DROP] * 2
    assert await limiter.check(other) is Verdict.ALLOWED  # nobody else is slowed down


async def test_concurrent_messages_on_two_replicas_are_counted_atomically(replicas):
    flooder = sender()
    verdicts = await asyncio.gather(*(replicas[n % 2].check(flooder) for n in range(50)))
    assert verdicts.count(Verdict.ALLOWED) == 5
    assert verdicts.count(Verdict.NOTIFY) == 1


async def test_the_counter_expires_with_its_window(redis_url, redis_client):
    client = aioredis.Redis.from_url(redis_url)
    limiter, flooder = SenderLimiter(client, limit=2, window_ms=300), sender()
    assert [await limiter.check(flooder) for _ in range(3)][-1] is Verdict.NOTIFY
    assert 0 < redis_client.pttl(PREFIX + flooder) <= 300  # never a counter without an expiry
    await asyncio.sleep(0.4)
    assert await limiter.check(flooder) is Verdict.ALLOWED
    await client.close()


async def test_an_unreachable_redis_lets_messages_through_quickly():
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    started = time.monotonic()
    assert [await SenderLimiter(client, limit=1).check("anyone") for _ in range(3)] == [Verdict.ALLOWED] * 3
    assert time.monotonic() - started < 2
    await client.close()


async def test_limited_messages_never_reach_the_dialogue_and_get_one_notice(replicas):
    handled = []

    async def dialogue(message: UserMessage) -> None:
        handled.append(message.text)
        await message.output_channel.send_text_message(message.sender_id, "好的")

    handle, flooder, outputs = throttled(dialogue, replicas[0]), sender(), []
    for n in range(8):
        outputs.append(CollectingOutputChannel())
        await handle(UserMessage(f"消息{n}", outputs[-1], flooder))
    assert handled == [f"消息{n}" for n in range(5)]
    assert [[m["text"] for m in o.messages] for o in outputs[5:]] == [[system_message("slow_down")], [], []]
