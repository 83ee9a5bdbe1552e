"""The Redis tracker and lock stores against a real redis-server, including a restart."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot.stores.redis import ResilientRedisLockStore, ResilientRedisTrackerStore

DOMAIN = Domain.from_yaml("intents: [greet]\nresponses:\n  utter_greet:\n  - text: 你好")


def tracker_with_greeting(sender: str) -> DialogueStateTracker:
    tracker = DialogueStateTracker(sender, DOMAIN.slots)
    tracker.update(UserUttered("你好", {"name": "greet", "confidence": 1.0}))
    tracker.update(ActionExecuted("utter_greet"))
    return tracker


async def test_tracker_round_trips_through_redis(redis_url):
    store = ResilientRedisTrackerStore(DOMAIN, host=redis_url, key_prefix="t")
    sender = f"shopper-{uuid.uuid4().hex}"
    await store.save(tracker_with_greeting(sender))
    restored = await ResilientRedisTrackerStore(DOMAIN, host=redis_url, key_prefix="t").retrieve(sender)
    assert [e.as_dict()["event"] for e in restored.events][-2:] == ["user", "action"]
    assert restored.latest_message.text == "你好"


async def test_tracker_save_rides_out_a_redis_restart(embedded_redis):
    store = ResilientRedisTrackerStore(DOMAIN, host=embedded_redis.url)
    await store.save(tracker_with_greeting("before"))
    embedded_redis.stop()
    restarter = threading.Timer(0.8, embedded_redis.start)
    restarter.start()
    started = time.monotonic()
    await store.save(tracker_with_greeting("during"))  # retries until Redis is back
    restarter.join()
    assert time.monotonic() - started >= 0.5
    assert (await store.retrieve("during")).latest_message.text == "你好"
    assert (await store.retrieve("before")) is not None  # persisted in the append-only file


async def test_tracker_save_fails_loudly_when_redis_stays_down(embedded_redis):
    import redis

    store = ResilientRedisTrackerStore(DOMAIN, host=embedded_redis.url)
    embedded_redis.stop()
    with pytest.raises(redis.ConnectionError):
        await store.save(tracker_with_greeting("lost"))


async def test_lock_store_serialises_one_conversation(redis_url):
    store = ResilientRedisLockStore(EndpointConfig(url=redis_url, key_prefix="locktest"))
    sender = f"shopper-{uuid.uuid4().hex}"
    order = []

    async def turn(name: str) -> None:
        async with store.lock(sender, wait_time_in_seconds=0.05):
            order.append(f"{name}-in")
            await asyncio.sleep(0.1)
            order.append(f"{name}-out")

    await asyncio.gather(turn("a"), turn("b"))
    assert order in (["a-in", "a-out", "b-in", "b-out"], ["b-in", "b-out", "a-in", "a-out"])
    assert store.get_lock(sender) is None


async def test_lock_store_rides_out_a_redis_restart(embedded_redis):
    store = ResilientRedisLockStore(EndpointConfig(url=embedded_redis.url))
    embedded_redis.stop()
    restarter = threading.Timer(0.5, embedded_redis.start)
    restarter.start()
    async with store.lock("during-restart", wait_time_in_seconds=0.05):
        assert store.get_lock("during-restart") is not None
    restarter.join()
    assert store.get_lock("during-restart") is None
