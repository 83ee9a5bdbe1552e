"""Issue 15, "Done when": events from two replicas reach the detector with nothing lost or
double-counted, against a real Redis and a consumer restart.

Two producer processes publish N events each (a producer's retry re-sends some of them: the same
event id twice), among them a burst on one SKU and a run of safety reports on another. Consumers
run meanwhile: one in a subprocess that is SIGKILLed while it holds entries it has read and not
acknowledged, one in this process, and a new one started after the kill; a further "consumer"
reads entries, counts some of them and dies before acknowledging. At the end every event id is
counted exactly once, the hourly counts equal exactly 2N, nothing is pending, and each key has
exactly one live alert.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from bot.redis_url import async_redis
from bot.risk.alerts import AlertStore
from bot.risk.detector import load_thresholds
from bot.risk.events import RiskEvent, new_event
from bot.risk.stream import GROUP, RiskStream
from bot.risk.worker import RiskWorker

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
N = 150  # events per producer
RETRIED = 10  # of them, published twice
BURST_PER_PRODUCER = 30  # return/quality on SKU-BURST
SAFETY_PER_PRODUCER = 8  # safety/fire on SKU-HOT
CLAIM_IDLE_MS = 300
TH = load_thresholds()


def planned_events(producer: int):
    """What one producer publishes: (events in order, of which the retried ones)."""
    events = []
    for n in range(N):
        event_id = f"p{producer}-{n:04d}"
        if n < BURST_PER_PRODUCER:
            event = new_event("return", "quality", "web", sku="SKU-BURST", merchant="m-burst", event_id=event_id)
        elif n < BURST_PER_PRODUCER + SAFETY_PER_PRODUCER:
            event = new_event("safety", "fire", "wechat", sku="SKU-HOT", merchant="m-hot", category="家用电器",
                              event_id=event_id, text="电饭煲着火了")
        else:
            event = new_event("complaint", "quality", "web", sku=f"SKU-{n % 40:03d}", merchant=f"m-{n % 7}",
                              category="服装鞋包", event_id=event_id)
        events.append(event)
    return events


# -- subprocess entry points ------------------------------------------------------------------
def produce_main(url: str, prefix: str, producer: int) -> None:
    async def produce() -> None:
        client = async_redis(url)
        stream = RiskStream(client, prefix)
        for n, event in enumerate(planned_events(producer)):
            assert await stream.publish(event)
            if n % (N // RETRIED) == 0:
                assert await stream.publish(event)  # a retry: the same event id again
            if n % 10 == 0:
                await asyncio.sleep(0.01)  # spread over time, so the consumers interleave
        await client.close()

    asyncio.run(produce())


def consume_main(url: str, prefix: str, name: str) -> None:
    async def consume() -> None:
        client = async_redis(url)
        worker = RiskWorker(client, AlertStore(client, prefix), load_thresholds(), name, prefix,
                            claim_idle_ms=CLAIM_IDLE_MS, claim_every_s=0.2)
        await worker.run()

    asyncio.run(consume())


def spawn(call: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", f"from tests.risk.test_replicas import *; {call}"], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


# -- the test ---------------------------------------------------------------------------------
async def seed_burst_baseline(redis, worker: RiskWorker) -> None:
    """A month of ordinary return volume in which SKU-BURST has a few quality returns."""
    end = worker.bucket(time.time())
    history = range(end - TH.history_hours + 1, end - max(TH.windows_h))
    await redis.hset(worker.counts_key("all|return"), mapping={str(b): 50 for b in history})
    await redis.hset(worker.counts_key("sku:SKU-BURST|return:quality"),
                     mapping={str(b): 1 for b in history if b % 24 == 0})
    return sum(1 for b in history if b % 24 == 0), 50 * len(history)


async def sum_counts(redis, worker: RiskWorker, series: str) -> int:
    return sum(int(v) for v in (await redis.hgetall(worker.counts_key(series))).values())


async def wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_two_replicas_a_killed_consumer_and_a_restart_lose_and_double_count_nothing(redis_url):
    prefix = f"test:{uuid.uuid4().hex}:"
    redis = async_redis(redis_url)
    alerts = AlertStore(redis, prefix)
    local = RiskWorker(redis, alerts, TH, "local", prefix, claim_idle_ms=CLAIM_IDLE_MS, claim_every_s=0.2)
    await local.ensure_group()
    baseline_key, baseline_total = await seed_burst_baseline(redis, local)
    children = []
    stop = asyncio.Event()
    tasks = []
    try:
        doomed = spawn(f"consume_main({redis_url!r}, {prefix!r}, 'doomed')")
        children.append(doomed)
        producers = [spawn(f"produce_main({redis_url!r}, {prefix!r}, {p})") for p in (1, 2)]
        children += producers

        # A consumer that reads entries, counts a few of them and dies without acknowledging any.
        async def some_entries():
            return await redis.xlen(local.stream) >= 20
        await wait_for(some_entries, 60, "the producers' first events")
        # The subprocess consumer may have read everything so far: wait (blocking reads) for new entries.
        crashed, deadline = [], time.monotonic() + 60
        while not crashed and time.monotonic() < deadline:
            for _, entries in await redis.xreadgroup(GROUP, "crashed", {local.stream: ">"}, count=15, block=200):
                crashed += entries
        assert crashed, "the crashed reader never got an entry"
        for _, fields in crashed[:5]:
            await local.count(RiskEvent.from_fields(fields))

        # The subprocess consumer is killed while it holds entries read and not acknowledged.
        async def doomed_holds_entries():
            info = await redis.xpending(local.stream, GROUP)
            return any(c["name"] in (b"doomed", "doomed") and c["pending"] > 0 for c in info["consumers"])
        await wait_for(doomed_holds_entries, 60, "the doomed consumer to hold entries")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        tasks.append(asyncio.create_task(local.run(stop)))

        for producer in producers:
            assert await asyncio.to_thread(producer.wait, 120) == 0
        restarted = RiskWorker(redis, alerts, TH, "restarted", prefix, claim_idle_ms=CLAIM_IDLE_MS,
                               claim_every_s=0.2)
        tasks.append(asyncio.create_task(restarted.run(stop)))

        async def all_done():
            pending = (await redis.xpending(local.stream, GROUP))["pending"]
            counted = sum(int(v) for v in (await redis.hgetall(local.counts_key("all|complaint"))).values())
            return pending == 0 and counted >= 2 * (N - BURST_PER_PRODUCER - SAFETY_PER_PRODUCER)
        await wait_for(all_done, 120, "every entry processed")
        await asyncio.sleep(3 * 0.2)  # any late double count would show now
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()

    published = {e.id for p in (1, 2) for e in planned_events(p)}
    assert await redis.xlen(local.stream) == 2 * (N + RETRIED)
    applied = set()
    for key in await redis.keys(prefix + "applied:*"):
        applied |= {m.decode() for m in await redis.smembers(key)}
    assert applied == published  # every event id applied, nothing else

    totals = {kind: await sum_counts(redis, local, f"all|{kind}") for kind in ("return", "safety", "complaint")}
    assert totals["return"] - baseline_total == 2 * BURST_PER_PRODUCER
    assert totals["safety"] == 2 * SAFETY_PER_PRODUCER
    assert totals["complaint"] == 2 * (N - BURST_PER_PRODUCER - SAFETY_PER_PRODUCER)
    assert sum(totals.values()) - baseline_total == 2 * N
    assert await sum_counts(redis, local, "sku:SKU-BURST|return:quality") - baseline_key == 2 * BURST_PER_PRODUCER
    assert await sum_counts(redis, local, "sku:SKU-HOT|safety:*") == 2 * SAFETY_PER_PRODUCER
    per_sku = Counter(e.sku for p in (1, 2) for e in planned_events(p) if e.kind == "complaint")
    for sku, expected in per_sku.items():
        assert await sum_counts(redis, local, f"sku:{sku}|complaint:quality") == expected, sku

    pending = await redis.xpending(local.stream, GROUP)
    assert pending["pending"] == 0

    live = await alerts.list(status="live")
    keys = Counter(a.key for a in live)
    assert all(n == 1 for n in keys.values()), keys  # exactly one live alert per key
    hot = next(a for a in live if a.key == "sku:SKU-HOT|safety:fire")
    assert hot.severity == "critical" and hot.safety
    assert "sku:SKU-BURST|return:quality" in keys
    await redis.close()
