"""Redis faults in the middle of a turn, through Rasa's real wiring: `load_agent` with the
production endpoints (so `FailSafeTrackerStore` wraps our tracker store, as in `rasa run`), the
polite channel wrapper, and a real redis-server that is stopped and started again.

Before issue 12, a read that failed for longer than the retry window made Rasa start a brand-new
tracker; when Redis came back, that tracker replaced the whole stored conversation, and the
shopper was never told. A conflict was swallowed the same way.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Iterator, List

import pytest
from rasa.core.agent import load_agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.utils import AvailableEndpoints
from rasa.shared.core.events import ConversationPaused, SlotSet, UserUttered
from rasa.utils.endpoints import EndpointConfig

from bot.channels.polite import polite, system_message
from bot.model import ensure_trained
from bot.redis_server import EmbeddedRedis
from bot.settings import Settings
from bot.stores.redis import RedisEventLogTrackerStore, RedisTicketLockStore
from tests.conftest import free_port

OUTAGE_S = 10.0


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(free_port(), tmp_path_factory.mktemp("redis-faults")).start()
    yield server
    server.stop()


def endpoints(url: str) -> AvailableEndpoints:
    return AvailableEndpoints(
        tracker_store=EndpointConfig(url=url, type="bot.stores.redis.RedisEventLogTrackerStore", key_prefix="xiaobao"),
        lock_store=EndpointConfig(url=url, type="bot.stores.redis.RedisTicketLockStore", key_prefix="xiaobao", lease_s=10),
    )


@pytest.fixture(scope="module")
def model() -> Path:
    return ensure_trained(Settings.from_env())


async def replica(model: Path, url: str):
    return await load_agent(model_path=str(model), endpoints=endpoints(url))


def inner_store(agent) -> RedisEventLogTrackerStore:
    store = agent.tracker_store
    while not isinstance(store, RedisEventLogTrackerStore):
        store = store._tracker_store
    return store


async def say(agent, sender: str, text: str) -> List[str]:
    collector = CollectingOutputChannel()
    await polite(agent.handle_message)(UserMessage(text, collector, sender))
    return [m.get("text") or "" for m in collector.messages]


def outage(server: EmbeddedRedis) -> threading.Timer:
    """Stops Redis now and starts it again OUTAGE_S later."""
    server.stop()
    restart = threading.Timer(OUTAGE_S, server.start)
    restart.start()
    return restart


async def conversation_with_history(agent, sender: str) -> None:
    for text in ("你好", "我想问问退货", "谢谢"):
        assert await say(agent, sender, text), f"no reply to {text}"
    store = inner_store(agent)
    tracker = await store.retrieve(sender)
    tracker.update(SlotSet("verified_order_ids", ["20261120-0001"]))
    tracker.update(ConversationPaused())  # a person has taken over
    await store.save(tracker)


async def stored_texts(url: str, sender: str, domain):
    tracker = await RedisEventLogTrackerStore(domain, host=url).retrieve_full_tracker(sender)
    return tracker, [e.text for e in tracker.events if isinstance(e, UserUttered)]


async def test_redis_down_after_the_lock_loses_nothing_and_the_shopper_is_asked_to_resend(model, redis_server):
    agent = await replica(model, redis_server.url)
    sender = f"outage-{uuid.uuid4().hex[:8]}"
    await conversation_with_history(agent, sender)

    lock_store: RedisTicketLockStore = agent.lock_store
    acquire = lock_store._acquire
    timers = []

    async def acquire_then_fail(*args):
        ticket = await acquire(*args)
        lock_store._acquire = acquire
        timers.append(outage(redis_server))  # the read that follows fails for 10 s
        return ticket

    lock_store._acquire = acquire_then_fail
    replies = await say(agent, sender, "那我的退款什么时候到")
    timers[0].join()
    assert replies == [system_message("turn_not_saved")]

    tracker, texts = await stored_texts(redis_server.url, sender, agent.domain)
    assert texts == ["你好", "我想问问退货", "谢谢"]  # earlier turns kept; the lost one was asked again
    assert tracker.get_slot("verified_order_ids") == ["20261120-0001"]
    assert tracker.is_paused()
    assert agent.tracker_store._fallback_tracker_store is None  # nothing went to Rasa's memory store


async def test_redis_down_during_the_turn_keeps_the_conversation(model, redis_server):
    agent = await replica(model, redis_server.url)
    sender = f"midturn-{uuid.uuid4().hex[:8]}"
    for text in ("你好", "谢谢"):
        assert await say(agent, sender, text)
    store = inner_store(agent)
    retrieve = store.retrieve
    timers = []

    async def retrieve_then_fail(sender_id):
        tracker = await retrieve(sender_id)
        store.retrieve = retrieve
        timers.append(outage(redis_server))  # the save at the end of the turn fails
        return tracker

    store.retrieve = retrieve_then_fail
    replies = await say(agent, sender, "你好")
    timers[0].join()
    assert replies[-1] == system_message("turn_not_saved")
    time.sleep(0.5)
    assert await say(agent, sender, "再见")  # Redis is back: the conversation goes on
    _, texts = await stored_texts(redis_server.url, sender, agent.domain)
    assert texts == ["你好", "谢谢", "再见"]
    assert agent.tracker_store._fallback_tracker_store is None


async def test_a_conflict_between_replicas_asks_the_shopper_to_resend_and_loses_nothing(model, redis_server):
    replica_a, replica_b = await replica(model, redis_server.url), await replica(model, redis_server.url)
    sender = f"conflict-{uuid.uuid4().hex[:8]}"
    assert await say(replica_a, sender, "你好")
    store_a, store_b = inner_store(replica_a), inner_store(replica_b)
    retrieve = store_a.retrieve

    async def retrieve_then_other_replica_writes(sender_id):
        tracker = await retrieve(sender_id)
        store_a.retrieve = retrieve
        # Replica B writes meanwhile (as after A's lock lease lapsed).
        other = await store_b.retrieve(sender_id)
        other.update(UserUttered("另一个副本的消息"))
        await store_b.save(other)
        return tracker

    store_a.retrieve = retrieve_then_other_replica_writes
    replies = await say(replica_a, sender, "谢谢")
    assert replies[-1] == system_message("turn_not_saved")
    _, texts = await stored_texts(redis_server.url, sender, replica_a.domain)
    assert texts == ["你好", "另一个副本的消息"]
    assert replica_a.tracker_store._fallback_tracker_store is None


async def test_the_http_api_replaces_only_on_put_and_says_503_when_the_store_failed(model, redis_server):
    """Rasa's own HTTP API, as `rasa run --enable-api` builds it (with bot.rasa_patches installed),
    served on loopback."""
    import aiohttp
    import rasa.server

    import bot.channels  # noqa: F401  (installs the patches, as in the Rasa server)

    agent = await replica(model, redis_server.url)
    sender = f"api-{uuid.uuid4().hex[:8]}"
    for text in ("你好", "谢谢"):
        assert await say(agent, sender, text)
    app = rasa.server.create_app(agent=agent)
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True)
    await server.startup()
    base = f"http://127.0.0.1:{port}/conversations/{sender}/tracker/events"

    def user(text: str) -> dict:
        return {"event": "user", "text": text, "parse_data": {"intent": {"name": "greet", "confidence": 1.0}, "entities": []}}

    try:
        async with aiohttp.ClientSession() as http:
            # Appending works as before.
            async with http.post(base, json=[user("接着问")]) as response:
                assert response.status == 200
            # PUT is the one explicit way to replace a conversation.
            async with http.put(base, json=[{"event": "action", "name": "action_listen"},
                                            user("重来")]) as response:
                assert response.status == 200
            _, texts = await stored_texts(redis_server.url, sender, agent.domain)
            assert texts == ["重来"]
            # Redis goes down once the request holds the lock: Rasa would answer 200 (a brand-new
            # tracker, saved to its in-memory store).
            lock_store, acquire, timers = agent.lock_store, agent.lock_store._acquire, []

            async def acquire_then_fail(*args):
                ticket = await acquire(*args)
                lock_store._acquire = acquire
                timers.append(outage(redis_server))
                return ticket

            lock_store._acquire = acquire_then_fail
            async with http.post(base, json=[user("丢了吗")]) as response:
                assert response.status == 503
                assert (await response.json())["reason"] == "ConversationNotStored"
            timers[0].join()
            _, texts = await stored_texts(redis_server.url, sender, agent.domain)
            assert texts == ["重来"]
    finally:
        server.close()
        await server.wait_closed()
