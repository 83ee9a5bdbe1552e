"""Ticket transitions under concurrency and faults, against a real Redis: every transition is one
script on the server, so no interleaving of writers leaves a ticket inconsistent."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import traceback
import uuid
from collections import Counter, defaultdict

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.handoff.tickets import CLAIMED, RESOLVED, WAITING, TicketError, TicketStore

WORKERS = 3  # OS processes
STREAMS = 2  # concurrent coroutines in each process
ROUNDS = 200  # interleavings: fresh tickets each round, checked after each
TICKETS_PER_ROUND = 3
OPS_PER_STREAM = 4
OPERATIONS = ["claim", "note", "sla", "release", "transfer", "resolve"]
WEIGHTS = [4, 4, 2, 3, 2, 1]


@pytest.fixture
async def store(redis_url):
    tickets = TicketStore.from_url(redis_url, prefix=f"test:{uuid.uuid4().hex}:")
    yield tickets
    await tickets.close()


# -- the workers (separate processes) -----------------------------------------------------------
def worker(redis_url: str, prefix: str, index: int, barrier, results) -> None:
    try:
        log = asyncio.run(_work(redis_url, prefix, index, barrier))
        results.put((index, log, None))
    except BaseException:  # noqa: B902 - reported to the test
        barrier.abort()
        results.put((index, [], traceback.format_exc()))


async def _work(redis_url: str, prefix: str, index: int, barrier) -> list:
    store = TicketStore.from_url(redis_url, prefix)
    rng = random.Random(1000 + index)
    me, others = f"agent{index}", [f"agent{i}" for i in range(WORKERS) if i != index]
    log = []  # (round, ticket, operation, succeeded, note text or error)

    async def one(round_no: int, ticket_id: str, operation: str) -> None:
        note = f"{me}-{round_no}-{uuid.uuid4().hex[:6]}"
        try:
            if operation == "claim":
                ok = await store.claim(ticket_id, me)
            elif operation == "note":
                ok = (await store.add_note(ticket_id, me, note)) is not None
            elif operation == "sla":
                ok = (await store.mark_sla_notified(ticket_id)) is not None
            elif operation == "release":
                ok = (await store.release(ticket_id, me)) is not None
            elif operation == "transfer":
                ok = (await store.transfer(ticket_id, me, rng.choice(others))) is not None
            else:
                ok = (await store.resolve(ticket_id, me)) is not None
        except TicketError:
            ok = False
        except Exception as error:  # anything else is a defect: recorded, and the test fails
            log.append((round_no, ticket_id, operation, False, f"error: {error!r}"))
            return
        log.append((round_no, ticket_id, operation, ok, note if operation == "note" else None))

    async def stream(round_no: int, ids: list) -> None:
        for _ in range(OPS_PER_STREAM):
            await one(round_no, rng.choice(ids), rng.choices(OPERATIONS, WEIGHTS)[0])
            if rng.random() < 0.3:
                await asyncio.sleep(rng.random() / 1000)

    for round_no in range(ROUNDS):
        await asyncio.to_thread(barrier.wait, 60)  # the test has opened this round's tickets
        ids = [i.decode() for i in await store._redis.lrange(prefix + "round", 0, -1)]
        await asyncio.gather(*(stream(round_no, ids) for _ in range(STREAMS)))
        await asyncio.to_thread(barrier.wait, 60)  # the test checks them
    await store.close()
    return log


# -- checks -------------------------------------------------------------------------------------
async def check_consistent(store: TicketStore, ticket_id: str) -> dict:
    ticket = await store.get(ticket_id)
    assert ticket is not None
    in_queue = await store._redis.zscore(store._key("queue"), ticket_id) is not None
    open_id = await store._redis.get(store._key("open", ticket.sender_id))
    where = f"{ticket_id}: status {ticket.status}, assignee {ticket.assignee}, in queue {in_queue}"
    if ticket.status == WAITING:
        assert in_queue and ticket.assignee is None, where
    elif ticket.status == CLAIMED:
        assert not in_queue and ticket.assignee, where
    else:
        assert ticket.status == RESOLVED and not in_queue, where
    assert (open_id == ticket_id.encode()) == (ticket.status != RESOLVED), where
    holders = [a for a in (f"agent{i}" for i in range(WORKERS))
               if await store._redis.sismember(store._key("assigned", a), ticket_id)]
    return {"version": getattr(ticket, "version", None), "notes": [n["text"] for n in ticket.notes],
            "sla": ticket.sla_notified, "held by": holders,
            "holder": [ticket.assignee] if ticket.status == CLAIMED else []}


async def test_random_interleavings_from_several_processes_leave_every_ticket_consistent(redis_url):
    prefix = f"test:{uuid.uuid4().hex}:"
    store = TicketStore.from_url(redis_url, prefix)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(WORKERS + 1), context.Queue()
    processes = [context.Process(target=worker, args=(redis_url, prefix, i, barrier, results)) for i in range(WORKERS)]
    for process in processes:
        process.start()
    seen = {}
    try:
        for round_no in range(ROUNDS):
            ids = []
            for k in range(TICKETS_PER_ROUND):
                ticket, created = await store.create(f"r{round_no}-{k}", "human_request", "normal", "rest", "转人工")
                assert created
                ids.append(ticket.id)
            await store._redis.delete(prefix + "round")
            await store._redis.rpush(prefix + "round", *ids)
            await asyncio.to_thread(barrier.wait, 60)
            await asyncio.to_thread(barrier.wait, 60)
            for ticket_id in ids:
                seen[ticket_id] = await check_consistent(store, ticket_id)
        logs = [results.get(timeout=60) for _ in processes]
    finally:
        barrier.abort()
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
        await store.close()

    assert [crash for _, _, crash in logs if crash] == []
    entries = [entry for _, log, _ in logs for entry in log]
    assert [e for e in entries if e[4] and e[4].startswith("error")] == []
    assert len(entries) == ROUNDS * WORKERS * STREAMS * OPS_PER_STREAM
    succeeded = Counter(ticket_id for _, ticket_id, _, ok, _ in entries if ok)
    notes, marks = defaultdict(list), Counter()
    for _, ticket_id, operation, ok, text in entries:
        if ok and operation == "note":
            notes[ticket_id].append(text)
        if ok and operation == "sla":
            marks[ticket_id] += 1
    assert sum(succeeded.values()) > ROUNDS * TICKETS_PER_ROUND  # the runs did change tickets
    for ticket_id, state in seen.items():
        assert sorted(state["notes"]) == sorted(notes[ticket_id]), f"{ticket_id}: a note was lost"
        assert state["held by"] == state["holder"], f"{ticket_id}: the agents' index disagrees"
        assert state["version"] == 1 + succeeded[ticket_id], ticket_id  # create, then each transition
        assert marks[ticket_id] <= 1 and state["sla"] == (marks[ticket_id] == 1), ticket_id


async def test_two_stores_marking_the_sla_notice_at_once_exactly_one_wins(store, redis_url):
    ticket, _ = await store.create("sla-race", "human_request", "urgent", "rest", "转人工")
    other = TicketStore.from_url(redis_url, store._prefix)  # another replica: its own connections
    try:
        results = await asyncio.gather(*(s.mark_sla_notified(ticket.id) for s in [store, other] * 10))
    finally:
        await other.close()
    assert sum(r is not None for r in results) == 1
    assert (await store.get(ticket.id)).sla_notified


async def test_a_claimed_ticket_gets_no_sla_notice_and_a_failed_notice_is_retried(store):
    ticket, _ = await store.create("sla-claimed", "human_request", "normal", "rest", "转人工")
    assert await store.mark_sla_notified(ticket.id) is not None
    assert await store.unmark_sla_notified(ticket.id) is not None  # the notice could not be sent
    assert await store.claim(ticket.id, "alice")
    assert await store.mark_sla_notified(ticket.id) is None


async def test_a_stale_version_is_refused(store):
    ticket, _ = await store.create("versions", "human_request", "normal", "rest", "转人工")
    assert ticket.version == 1
    noted = await store.add_note(ticket.id, "alice", "先看订单", expected_version=1)
    assert noted.version == 2
    assert not await store.claim(ticket.id, "bob", expected_version=1)  # it changed since version 1
    with pytest.raises(TicketError):
        await store.add_note(ticket.id, "bob", "过期的备注", expected_version=1)
    assert await store.claim(ticket.id, "bob", expected_version=2)
    current = await store.get(ticket.id)
    assert current.version == 3 and [n["text"] for n in current.notes] == ["先看订单"]


# -- create -------------------------------------------------------------------------------------
class FailingRedis(aioredis.Redis):
    """A client whose `fail_at`-th command fails before it is sent, as if the connection dropped."""

    fail_at = 0
    calls = 0

    async def execute_command(self, *args, **options):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RedisConnectionError("injected: connection lost")
        return await super().execute_command(*args, **options)


async def test_create_is_all_or_nothing_wherever_the_connection_fails(redis_url):
    for fail_at in range(1, 9):
        prefix = f"test:{uuid.uuid4().hex}:"
        failing = FailingRedis.from_url(redis_url)
        failing.fail_at = fail_at
        broken, healthy = TicketStore(failing, prefix), TicketStore.from_url(redis_url, prefix)
        try:
            try:
                await broken.create("shopper", "human_request", "normal", "rest", "转人工")
            except RedisConnectionError:
                pass
            ticket, _ = await healthy.create("shopper", "human_request", "normal", "rest", "转人工")
            assert ticket is not None, f"failure at command {fail_at} left the shopper without a ticket"
            assert (await healthy.open_ticket_for("shopper")).id == ticket.id
            assert [t.id for t in await healthy.queue()] == [ticket.id]
            assert ticket.id in [t.id for t in await healthy.all_tickets()]
        finally:
            await broken.close()
            await healthy.close()


async def test_a_dangling_open_pointer_neither_crashes_nor_blocks_a_new_ticket(store):
    open_key = store._key("open", "lost")
    await store._redis.set(open_key, "T2024010199999")  # names a ticket that was never written
    assert await store.open_ticket_for("lost") is None
    assert await store._redis.get(open_key) is None  # cleaned
    await store._redis.set(open_key, "T2024010199999")
    ticket, created = await store.create("lost", "human_request", "normal", "rest", "转人工")
    assert created and ticket is not None and ticket.status == WAITING
    assert await store._redis.get(open_key) == ticket.id.encode()
    assert [t.id for t in await store.queue()] == [ticket.id]


async def test_concurrent_escalations_of_one_conversation_open_one_ticket(store):
    results = await asyncio.gather(*(store.create("twice", "complaint", "high", "rest", "投诉") for _ in range(8)))
    assert sum(created for _, created in results) == 1
    assert len({ticket.id for ticket, _ in results}) == 1
    assert len(await store.queue()) == 1


# -- the earlier layout -------------------------------------------------------------------------
async def test_tickets_of_the_earlier_layout_are_converted_when_touched(store):
    """A ticket written as one JSON string (before transitions were scripts) keeps working."""
    import json

    legacy = {"id": "T2024010100001", "sender_id": "old", "category": "complaint", "priority": "high",
              "channel": "rest", "summary": "投诉", "created_at": "2024-01-01T10:00:00+08:00",
              "sla_due": "2024-01-01T10:15:00+08:00", "customer": None, "order_id": None, "status": "claimed",
              "assignee": "alice", "claimed_at": "2024-01-01T10:01:00+08:00", "resolved_at": None,
              "sla_notified": False, "rating": None, "notes": {}, "evidence": {"photos": ["photo:a.jpg"]}}
    await store._redis.set(store._key("ticket", legacy["id"]), json.dumps(legacy, ensure_ascii=False))
    await store._redis.set(store._key("open", "old"), legacy["id"])
    await store._redis.rpush(store._key("all"), legacy["id"])
    assert await store.upgrade() == 1
    assert [t.id for t in await store.assigned_to("alice")] == [legacy["id"]]
    noted = await store.add_note(legacy["id"], "alice", "已联系")
    assert noted.notes[0]["text"] == "已联系" and noted.evidence == {"photos": ["photo:a.jpg"]}
    released = await store.release(legacy["id"], "alice")
    assert released.status == WAITING and [t.id for t in await store.queue()] == [legacy["id"]]
