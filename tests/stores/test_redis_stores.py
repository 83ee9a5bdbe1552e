"""The Redis tracker and lock stores against a real redis-server: incremental saves, fencing,
sessions, an atomic first-come-first-served lock under multi-process contention, and restarts."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
import uuid

import pytest
import redis
from rasa.core.lock_store import LockError
from rasa.core.tracker_store import FailSafeTrackerStore, TrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME, SESSION_START_METADATA_SLOT
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot.stores import outcome
from bot.stores.redis import RedisEventLogTrackerStore, RedisTicketLockStore, TrackerConflict

DOMAIN = Domain.from_yaml(
    "intents: [greet]\n"
    "slots:\n  order_id:\n    type: text\n    mappings: [{type: custom}]\n"
    "responses:\n  utter_greet:\n  - text: 你好"
)


def new_sender() -> str:
    return f"shopper-{uuid.uuid4().hex}"


def greeting(text: str = "你好") -> list:
    return [UserUttered(text, {"name": "greet", "confidence": 1.0}), ActionExecuted("utter_greet"),
            ActionExecuted(ACTION_LISTEN_NAME)]


def session_start() -> list:
    return [ActionExecuted(ACTION_SESSION_START_NAME), SessionStarted(), ActionExecuted(ACTION_LISTEN_NAME)]


def store(url: str, prefix: str = "t") -> RedisEventLogTrackerStore:
    return RedisEventLogTrackerStore(DOMAIN, host=url, key_prefix=prefix)


async def new_conversation(url: str, *events) -> str:
    sender = new_sender()
    tracker = DialogueStateTracker(sender, DOMAIN.slots)
    for event in events or greeting():
        tracker.update(event)
    await store(url).save(tracker)
    return sender


# ------------------------------------------------------------------ tracker store


async def test_tracker_round_trips_through_redis(redis_url):
    sender = await new_conversation(redis_url, *greeting(), SlotSet("order_id", "2024061812345678"))
    restored = await store(redis_url).retrieve(sender)  # a fresh store: nothing cached in-process
    assert [e.as_dict()["event"] for e in restored.events] == ["user", "action", "action", "slot"]
    assert restored.latest_message.text == "你好"
    assert restored.get_slot("order_id") == "2024061812345678"
    assert await store(redis_url).exists(sender)
    assert sender in await store(redis_url).keys()


async def test_save_writes_only_new_events(redis_url, redis_client):
    sender = await new_conversation(redis_url)
    key = f"t:events:{{{sender}}}"
    tracker = await store(redis_url).retrieve(sender)
    first = redis_client.lindex(key, 0)
    redis_client.lset(key, 0, first.replace("你好".encode(), "您好".encode()))  # marks the stored copy
    for event in greeting("在吗"):
        tracker.update(event)
    await store(redis_url).save(tracker)
    stored = redis_client.lrange(key, 0, -1)
    assert len(stored) == 6
    assert "您好" in stored[0].decode()  # the old entry was not rewritten
    assert "在吗" in stored[3].decode()


async def test_retrieve_returns_the_latest_session_and_full_tracker_all(redis_url):
    sender = await new_conversation(redis_url, *session_start(), *greeting("第一次"), *session_start(),
                                    *greeting("第二次"))
    latest = await store(redis_url).retrieve(sender)
    assert latest.events[0] == ActionExecuted(ACTION_SESSION_START_NAME)
    assert [e.text for e in latest.events if isinstance(e, UserUttered)] == ["第二次"]
    full = await store(redis_url).retrieve_full_tracker(sender)
    assert [e.text for e in full.events if isinstance(e, UserUttered)] == ["第一次", "第二次"]
    # A turn on the latest session appends after everything, not after the session.
    for event in greeting("第三次"):
        latest.update(event)
    await store(redis_url).save(latest)
    full = await store(redis_url).retrieve_full_tracker(sender)
    assert [e.text for e in full.events if isinstance(e, UserUttered)] == ["第一次", "第二次", "第三次"]


async def test_a_stale_writer_is_refused_and_nothing_is_lost(redis_url, redis_client):
    sender = await new_conversation(redis_url)
    first, second = await store(redis_url).retrieve(sender), await store(redis_url).retrieve(sender)
    for event in greeting("第一个进程"):
        first.update(event)
    await store(redis_url).save(first)
    for event in greeting("第二个进程"):
        second.update(event)
    with pytest.raises(TrackerConflict):
        await store(redis_url).save(second)
    full = await store(redis_url).retrieve_full_tracker(sender)
    assert [e.text for e in full.events if isinstance(e, UserUttered)] == ["你好", "第一个进程"]


async def test_a_foreign_tracker_extending_the_stored_one_is_appended(redis_url):
    sender = await new_conversation(redis_url)
    stored = await store(redis_url).retrieve(sender)
    foreign = DialogueStateTracker.from_events(sender, list(stored.events) + greeting("追加"), DOMAIN.slots)
    await store(redis_url).save(foreign)
    full = await store(redis_url).retrieve_full_tracker(sender)
    assert [e.text for e in full.events if isinstance(e, UserUttered)] == ["你好", "追加"]


async def test_a_tracker_that_does_not_extend_the_stored_one_is_refused(redis_url):
    # What Rasa does when a read failed: a brand-new tracker, saved once Redis is back.
    sender = await new_conversation(redis_url, *greeting("第一轮"), SlotSet("order_id", "A1"))
    brand_new = DialogueStateTracker.from_events(sender, session_start() + greeting("新一轮"), DOMAIN.slots)
    with pytest.raises(TrackerConflict):
        await store(redis_url).save(brand_new)
    with outcome.watching(sender) as turn:  # a watched turn is told, not raised at
        await store(redis_url).save(brand_new)
    assert turn.failure == outcome.CONFLICT
    full = await store(redis_url).retrieve_full_tracker(sender)
    assert [e.text for e in full.events if isinstance(e, UserUttered)] == ["第一轮"]
    assert full.get_slot("order_id") == "A1"


async def test_a_rewritten_conversation_replaces_the_stored_one_and_fences_old_readers(redis_url):
    sender = await new_conversation(redis_url)
    reader = await store(redis_url).retrieve(sender)
    rewritten = DialogueStateTracker.from_events(sender, greeting("重写"), DOMAIN.slots)
    with outcome.watching(sender, may_replace=True):  # PUT /conversations/<id>/tracker/events
        await store(redis_url).save(rewritten)
    full = await store(redis_url).retrieve_full_tracker(sender)
    assert [e.text for e in full.events if isinstance(e, UserUttered)] == ["重写"]
    reader.update(UserUttered("过时"))
    with pytest.raises(TrackerConflict):
        await store(redis_url).save(reader)


async def test_the_next_turn_reuses_the_saved_tracker_unless_another_replica_wrote(redis_url):
    replica_a, replica_b = store(redis_url), store(redis_url)
    sender = await new_conversation(redis_url)
    tracker = await replica_a.retrieve(sender)
    for event in greeting("第一轮"):
        tracker.update(event)
    await replica_a.save(tracker)
    assert await replica_a.retrieve(sender) is tracker  # no JSON, no replay
    await replica_a.save(tracker)  # (the turn ends; nothing new)
    other = await replica_b.retrieve(sender)
    for event in greeting("另一个副本"):
        other.update(event)
    await replica_b.save(other)
    fresh = await replica_a.retrieve(sender)  # Redis moved on: read again
    assert fresh is not tracker
    assert [e.text for e in fresh.events if isinstance(e, UserUttered)] == ["你好", "第一轮", "另一个副本"]


async def test_a_new_conversations_first_turn_is_reused_too(redis_url):
    # Driven as Rasa's processor drives it: created empty, then the session's metadata, its start
    # and the turn. The tracker's entry from its creation is gone by then (under load it was, for
    # every new conversation; here a second store plays the creator), so only the turn's save can
    # make it reusable.
    creator, replica = (FailSafeTrackerStore(TrackerStore.create(EndpointConfig(
        type="bot.stores.redis.RedisEventLogTrackerStore", url=redis_url, key_prefix="t"), DOMAIN)) for _ in "ab")
    sender = new_sender()
    tracker = await creator.get_or_create_tracker(sender, append_action_listen=False)
    for event in [SlotSet(SESSION_START_METADATA_SLOT, {"channel": "rest"})] + session_start() + greeting("第一轮"):
        tracker.update(event)
    await replica.save(tracker)
    assert await replica.retrieve(sender) is tracker  # turn 2 reads nothing back from Redis


async def test_a_saved_tracker_is_handed_out_once_and_not_after_a_change(redis_url):
    replica = store(redis_url)
    sender = await new_conversation(redis_url)
    tracker = await replica.retrieve(sender)
    tracker.update(UserUttered("已保存"))
    await replica.save(tracker)
    first, second = await replica.retrieve(sender), await replica.retrieve(sender)
    assert first is tracker and second is not tracker  # never shared between two holders
    await replica.save(first)
    first.update(UserUttered("改了没存"))  # changed after its save
    again = await replica.retrieve(sender)
    assert again is not first and again.latest_message.text == "已保存"


async def test_a_new_session_is_read_back_from_redis(redis_url):
    replica = store(redis_url)
    sender = await new_conversation(redis_url)
    tracker = await replica.retrieve(sender)
    for event in session_start() + greeting("新会话"):
        tracker.update(event)
    await replica.save(tracker)
    latest = await replica.retrieve(sender)
    assert latest is not tracker
    assert [e.text for e in latest.events if isinstance(e, UserUttered)] == ["新会话"]


def long_conversation(sender: str, turns: int) -> DialogueStateTracker:
    tracker = DialogueStateTracker(sender, DOMAIN.slots)
    for event in session_start():
        tracker.update(event)
    for turn in range(turns):
        for event in greeting(f"第{turn}句"):
            tracker.update(event)
        if turn in (3, turns - 4):  # set long ago, then changed inside the window
            tracker.update(SlotSet("order_id", f"订单{turn}"))
    return tracker


async def test_rasa_works_on_a_window_with_the_state_at_its_cut(redis_url):
    from rasa.shared.core.events import ConversationPaused

    sender = new_sender()
    full = long_conversation(sender, 40)
    full.update(ConversationPaused())
    await store(redis_url).save(full)
    window = await store(redis_url).retrieve(sender)
    users = [e.text for e in window.events if isinstance(e, UserUttered)]
    assert users == [f"第{turn}句" for turn in range(30, 40)]
    assert window.get_slot("order_id") == "订单36" and window.is_paused()
    # At the cut the slot holds what it held then, not its final value.
    first_user = next(e for e in window.events if isinstance(e, UserUttered))
    at_cut_window = window.travel_back_in_time(first_user.timestamp)
    at_cut_full = full.travel_back_in_time(first_user.timestamp)
    assert at_cut_window.get_slot("order_id") == at_cut_full.get_slot("order_id") == "订单3"
    # A turn on the window is appended to the full log.
    for event in greeting("新的一句"):
        window.update(event)
    await store(redis_url).save(window)
    everything = await store(redis_url).retrieve_full_tracker(sender)
    assert [e.text for e in everything.events if isinstance(e, UserUttered)][-3:] == ["第38句", "第39句", "新的一句"]
    assert len(everything.events) == len(full.events) + 3


async def test_session_events_reads_the_whole_latest_session(redis_url):
    import redis.asyncio as aioredis

    from bot.stores.redis import session_events

    sender = new_sender()
    await RedisEventLogTrackerStore(DOMAIN, host=redis_url).save(long_conversation(sender, 30))
    client = aioredis.Redis.from_url(redis_url)
    events = await session_events(client, sender)
    await client.close()
    assert [e["text"] for e in events if e["event"] == "user"] == [f"第{turn}句" for turn in range(30)]


async def test_unknown_conversation_is_none(redis_url):
    assert await store(redis_url).retrieve(new_sender()) is None
    assert not await store(redis_url).exists(new_sender())


async def test_tracker_save_rides_out_a_redis_restart(embedded_redis):
    before = await new_conversation(embedded_redis.url)
    embedded_redis.stop()
    restarter = threading.Timer(0.8, embedded_redis.start)
    restarter.start()
    started = time.monotonic()
    during = await new_conversation(embedded_redis.url)  # retries until Redis is back
    restarter.join()
    assert time.monotonic() - started >= 0.5
    assert (await store(embedded_redis.url).retrieve(during)).latest_message.text == "你好"
    assert (await store(embedded_redis.url).retrieve(before)) is not None  # in the append-only file


async def test_tracker_save_fails_loudly_and_soon_when_redis_stays_down(embedded_redis):
    url = embedded_redis.url
    await new_conversation(url)  # the client has pooled connections when Redis goes away
    embedded_redis.stop()
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        await new_conversation(url)
    assert time.monotonic() - started < 10  # nested retries once made this a minute


async def test_lock_fails_soon_with_lock_error_when_redis_stays_down(embedded_redis):
    store_ = lock_store(embedded_redis.url)
    async with store_.lock("before"):
        pass
    embedded_redis.stop()
    started = time.monotonic()
    with pytest.raises(LockError):
        async with store_.lock("during-outage"):
            pass
    assert time.monotonic() - started < 10


# ------------------------------------------------------------------ lock store


def lock_store(url: str, **options) -> RedisTicketLockStore:
    return RedisTicketLockStore(EndpointConfig(url=url, key_prefix="locktest", **options))


async def test_lock_serialises_one_conversation_first_come_first_served(redis_url, redis_client):
    store_ = lock_store(redis_url)
    sender = new_sender()
    order = []

    async def turn(name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        async with store_.lock(sender):
            order.append(f"{name}-in")
            await asyncio.sleep(0.05)
            order.append(f"{name}-out")

    await asyncio.gather(turn("c", 0.02), turn("a", 0.0), turn("b", 0.01))
    assert order == ["a-in", "a-out", "b-in", "b-out", "c-in", "c-out"]
    lock_key = f"locktest:lock:{{{sender}}}"
    assert not redis_client.exists(f"locktest:lease:{{{sender}}}")  # no ticket left behind
    assert sorted(redis_client.hkeys(lock_key)) == [b"next", b"serving"]  # the counter stays ...
    assert 0 < redis_client.pttl(lock_key) <= 100_000  # ... until the idle lock expires


async def test_a_stale_holder_cannot_release_the_lock_of_the_next_queue(redis_url):
    sender = new_sender()
    stale = lock_store(redis_url, lease_s=0.3)

    async def no_heartbeat(*args):  # a holder that stalls (GC pause, blocked loop) and loses its lease
        return None

    stale._heartbeat = no_heartbeat
    fresh = lock_store(redis_url)
    probe = lock_store(redis_url, max_queue_s=0.5)
    async with stale.lock(sender):
        await asyncio.sleep(0.5)  # the lease lapses
        async with fresh.lock(sender):  # the queue skips the stale ticket ...
            pass  # ... and empties: before issue 12 its counter was deleted and numbering restarted
        current = fresh.lock(sender)
        await current.__aenter__()  # the current holder
    # The stale holder has just released (leaving its block). The current holder keeps the lock:
    with pytest.raises(LockError):
        async with probe.lock(sender):
            pass
    await current.__aexit__(None, None, None)
    async with probe.lock(sender):  # and once it releases, the next one gets it
        pass


async def test_a_waiter_gets_the_lock_within_milliseconds_of_its_release(redis_url):
    store_ = lock_store(redis_url)
    sender = new_sender()
    released = {}

    async def holder() -> None:
        async with store_.lock(sender):
            await asyncio.sleep(0.2)
        released["at"] = time.monotonic()

    async def waiter() -> float:
        await asyncio.sleep(0.05)
        async with store_.lock(sender):
            return time.monotonic()

    _, acquired = await asyncio.gather(holder(), waiter())
    # Stock Rasa polls once a second; here the gap is the poll interval (25 ms at most).
    assert acquired - released["at"] < 0.15


async def test_the_ticket_of_a_crashed_holder_expires(redis_url):
    crashed = lock_store(redis_url, lease_s=0.3)
    sender = new_sender()
    client = crashed._redis
    keys = crashed._keys(sender)
    ticket = await crashed._acquire(client, keys, sender, "crashed-holder")  # taken, then the process "dies"
    assert ticket >= 1
    started = time.monotonic()
    async with lock_store(redis_url, lease_s=0.3).lock(sender):
        waited = time.monotonic() - started
    assert 0.2 < waited < 2.0


async def test_a_long_turn_keeps_its_lock_through_the_heartbeat(redis_url):
    short = lock_store(redis_url, lease_s=0.3)
    sender = new_sender()
    order = []

    async def long_turn() -> None:
        async with short.lock(sender):
            order.append("long-in")
            await asyncio.sleep(1.0)  # more than three leases
            order.append("long-out")

    async def next_turn() -> None:
        await asyncio.sleep(0.1)
        async with short.lock(sender):
            order.append("next-in")

    await asyncio.gather(long_turn(), next_turn())
    assert order == ["long-in", "long-out", "next-in"]


async def test_waiting_too_long_raises_lock_error(redis_url):
    patient = lock_store(redis_url)
    impatient = lock_store(redis_url, max_queue_s=0.2)
    sender = new_sender()

    async def hold() -> None:
        async with patient.lock(sender):
            await asyncio.sleep(0.6)

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0.05)
    with pytest.raises(LockError):
        async with impatient.lock(sender):
            pass
    await holder


def _contend(url: str, sender: str, turns: int, results) -> None:
    """In a separate process: read-modify-write a counter under the lock, with a pause between
    read and write that makes any overlap lose an update."""

    async def main() -> None:
        store_ = lock_store(url)
        client = redis.Redis.from_url(url)
        for _ in range(turns):
            async with store_.lock(sender):
                value = int(client.get(f"counter:{sender}") or 0)
                await asyncio.sleep(0.002)
                client.set(f"counter:{sender}", value + 1)

    asyncio.run(main())
    results.put("ok")


def test_the_lock_is_atomic_across_processes(redis_url, redis_client):
    sender = new_sender()
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=_contend, args=(redis_url, sender, 40, results)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [results.get(timeout=5) for _ in processes] == ["ok"] * 4
    assert int(redis_client.get(f"counter:{sender}")) == 4 * 40


async def test_lock_rides_out_a_redis_restart(embedded_redis):
    store_ = lock_store(embedded_redis.url)
    embedded_redis.stop()
    restarter = threading.Timer(0.5, embedded_redis.start)
    restarter.start()
    async with store_.lock("during-restart"):
        pass
    restarter.join()
