"""Retention of rights events against a real Redis: the stream keeps retention_days (电子商务法
第三十一条, at least three years) and loses what is older; count buckets beyond what the detector
reads and old resolved alerts go; open alerts stay; what is stored holds only pseudonyms."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid

import pytest

from bot.risk.alerts import AlertStore
from bot.risk.detector import Finding, load_thresholds
from bot.risk.events import new_event, pseudonym
from bot.risk.retention import bucket_hours_kept, purge, purge_once_a_day
from bot.risk.stream import RiskStream, stream_key
from bot.risk.worker import RiskWorker

TH = load_thresholds()
DAY = 86400


@pytest.fixture
def prefix():
    return f"test:{uuid.uuid4().hex}:"


def test_retention_is_at_least_three_years():
    assert TH.retention_days >= 1096


async def test_events_older_than_retention_are_trimmed_newer_stay(redis, prefix):
    now = time.time()
    key = stream_key(prefix)
    ages = {"old": TH.retention_days + 2, "just_old": TH.retention_days + 0.01, "kept": TH.retention_days - 1,
            "new": 0.5}
    for name, age in ages.items():  # oldest first: stream ids only grow
        await redis.xadd(key, {"name": name}, id=f"{int((now - age * DAY) * 1000)}-0")
    result = await purge(redis, now, TH, prefix)
    left = [fields[b"name"].decode() for _, fields in await redis.xrange(key)]
    assert result["events"] == 2 and left == ["kept", "new"]


async def test_a_longer_retention_keeps_more(redis, prefix):
    now = time.time()
    key = stream_key(prefix)
    await redis.xadd(key, {"name": "four years"}, id=f"{int((now - 4 * 365 * DAY) * 1000)}-0")
    await purge(redis, now, dataclasses.replace(TH, retention_days=5 * 365), prefix)
    assert await redis.xlen(key) == 1
    await purge(redis, now, TH, prefix)
    assert await redis.xlen(key) == 0


async def test_count_buckets_beyond_what_the_detector_reads_are_dropped(redis, prefix):
    worker = RiskWorker(redis, AlertStore(redis, prefix), TH, "w", prefix)
    now = time.time()
    event = new_event("return", "quality", "web", sku="SKU-1", at=now)
    await worker.count(event)
    hour = worker.bucket(now)
    series = worker.counts_key("sku:SKU-1|return:quality")
    kept = hour - bucket_hours_kept(TH) + 1
    await redis.hset(series, mapping={str(hour - bucket_hours_kept(TH) - 5): 3, str(kept): 2})
    stale = worker.counts_key("sku:SKU-2|return:quality")
    await redis.hset(stale, str(hour - 5000), 1)
    await redis.sadd(prefix + "count-keys", stale)
    result = await purge(redis, now, TH, prefix)
    assert result["buckets"] == 2
    assert sorted(int(f) for f in await redis.hkeys(series)) == [kept, hour]
    assert not await redis.exists(stale)
    assert stale.encode() not in await redis.smembers(prefix + "count-keys")
    assert bucket_hours_kept(TH) > TH.history_hours  # the detector's series is never cut


async def test_resolved_alerts_past_retention_go_open_ones_stay(redis, prefix):
    alerts = AlertStore(redis, prefix)
    finding = Finding("sku:SKU-1|return:quality", "sku", "SKU-1", "return", "quality", "high", 12, 3.0, 4.0,
                      24, 1e-7, "近24小时 12 起")
    resolved = await alerts.record(finding, new_event("return", "quality", "web", sku="SKU-1"), {})
    await alerts.resolve(resolved.id, "sup", "已处理")
    still_open = await alerts.record(dataclasses.replace(finding, key="sku:SKU-2|return:quality", value="SKU-2"),
                                     new_event("return", "quality", "web", sku="SKU-2"), {})
    assert (await purge(redis, time.time(), TH, prefix))["alerts"] == 0  # resolved just now: kept
    later = time.time() + (TH.retention_days + 1) * DAY
    assert (await purge(redis, later, TH, prefix))["alerts"] == 1
    assert await alerts.get(resolved.id) is None
    assert [a.id for a in await alerts.list()] == [still_open.id]
    assert await alerts.list(status="resolved") == [] and await alerts.list(merchant=None, severity="high") != []
    assert not await redis.exists(f"{prefix}alert-history:{resolved.id}")


async def test_one_replica_purges_a_day(redis, prefix):
    now = time.time()
    first, second = await asyncio.gather(purge_once_a_day(redis, now, TH, prefix),
                                         purge_once_a_day(redis, now, TH, prefix))
    assert [first is None, second is None].count(True) == 1


async def test_the_worker_runs_the_daily_purge(redis, prefix):
    worker = RiskWorker(redis, AlertStore(redis, prefix), TH, "w", prefix)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    for _ in range(50):
        if await redis.exists(prefix + "retention-lock"):
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert await redis.exists(prefix + "retention-lock")


async def test_a_stored_event_holds_only_pseudonyms(redis, prefix):
    event = new_event("complaint", "quality", "wechat", sku="SKU-60001", order_id="2026112900000015",
                      customer_id="c1001", text="我是王女士，电话13800001234，身份证110101199003074518，电饭煲坏了")
    assert await RiskStream(redis, prefix).publish(event)
    [(_, fields)] = await redis.xrange(stream_key(prefix))
    stored = " ".join(f"{k.decode()}={v.decode()}" for k, v in fields.items())
    for personal in ("13800001234", "110101199003074518", "c1001", "2026112900000015"):
        assert personal not in stored
    assert f"customer={pseudonym('c1001')}" in stored and f"order={pseudonym('2026112900000015')}" in stored
    assert "电饭煲坏了" in stored
