"""Risk alerts against a real Redis: one live alert per key under concurrent recorders, staff
transitions that refuse what makes no sense, indexes for the console's filters, and an event on
the pub/sub channel for every change."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, replace

import pytest

from bot.redis_url import async_redis
from bot.risk.alerts import SAMPLES, AlertError, AlertStore, sample_of
from bot.risk.events import new_event


@dataclass(frozen=True)
class Finding:  # the detector's Finding, field for field (bot.risk.detector)
    key: str
    dimension: str
    value: str
    kind: str
    reason: str
    severity: str
    observed: int
    expected: float
    ratio: float
    window_h: int
    p_value: float
    rule: str


KETTLE = Finding("sku:SKU-60001|return:quality", "sku", "SKU-60001", "return", "quality", "high", 12, 3.1,
                 3.87, 24, 1e-5, "近24小时 12 起，按基线应约 3.1 起（3.9 倍）")
FIRE = Finding("sku:SKU-60001|safety:fire", "sku", "SKU-60001", "safety", "fire", "urgent", 1, 0.0, 0.0, 72,
               0.0, "安全事件：一起起火报告，立即预警")
SERIES = {"start": 1_700_000_000, "bucket_s": 3600, "counts": [0, 1, 0, 5], "expected_per_bucket": 0.2}


def event(kind="return", reason="quality", text="电饭煲坏了", **kw):
    return new_event(kind, reason, "web", sku="SKU-60001", merchant="m-jiadian", category="家用电器", text=text, **kw)


@pytest.fixture
def store(redis):
    return AlertStore(redis, prefix=f"test:{uuid.uuid4().hex}:")


async def test_a_finding_opens_an_alert_with_its_evidence(store):
    alert = await store.record(KETTLE, event(ticket="T2026120300001"), SERIES)
    assert alert.id.startswith("R") and alert.status == "open" and alert.version == 1
    assert (alert.sku, alert.merchant, alert.category) == ("SKU-60001", "m-jiadian", "家用电器")
    assert (alert.observed, alert.expected, alert.ratio, alert.window_h) == (12, 3.1, 3.87, 24)
    assert alert.rule == KETTLE.rule and alert.series == SERIES and not alert.safety
    assert alert.samples == [{"at": alert.samples[0]["at"], "channel": "web", "ticket": "T2026120300001",
                              "excerpt": "电饭煲坏了"}]
    assert "+08:00" in alert.created_at and "+08:00" in alert.samples[0]["at"]
    assert [h["op"] for h in alert.history] == ["create"]
    assert await store.get(alert.id) == alert


async def test_a_merchant_alert_names_only_its_merchant(store):
    finding = replace(KETTLE, key="merchant:m-jiadian|return:quality", dimension="merchant", value="m-jiadian")
    alert = await store.record(finding, event(), SERIES)
    assert (alert.sku, alert.merchant, alert.category) == (None, "m-jiadian", None)


async def test_the_live_alert_is_updated_and_severity_only_rises(store):
    first = await store.record(KETTLE, event(text="第一次"), SERIES)
    worse = await store.record(replace(KETTLE, severity="critical", observed=20), event(text="第二次"), SERIES)
    calmer = await store.record(replace(KETTLE, severity="normal", observed=21), event(text="第三次"), SERIES)
    assert first.id == worse.id == calmer.id
    assert calmer.severity == "critical" and calmer.observed == 21 and calmer.version == 3
    assert [s["excerpt"] for s in calmer.samples] == ["第三次", "第二次", "第一次"]
    assert [h["op"] for h in calmer.history] == ["create", "escalate", "update"]
    assert [a.id for a in await store.list(severity="critical")] == [first.id]
    assert await store.list(severity="high") == []


async def test_samples_keep_the_newest_twenty(store):
    for n in range(SAMPLES + 5):
        alert = await store.record(KETTLE, event(text=f"第{n}次"), SERIES)
    assert len(alert.samples) == SAMPLES and alert.samples[0]["excerpt"] == f"第{SAMPLES + 4}次"


async def test_concurrent_recorders_leave_exactly_one_live_alert(redis_url, store):
    clients = [async_redis(redis_url) for _ in range(8)]
    stores = [AlertStore(c, prefix=store._prefix) for c in clients]
    try:
        alerts = await asyncio.gather(*(s.record(KETTLE, event(), SERIES) for s in stores for _ in range(5)))
    finally:
        for c in clients:
            await c.close()
    assert len({a.id for a in alerts}) == 1
    final = await store.get(alerts[0].id)
    assert final.version == 40 and len(await store.list(status="live")) == 1


async def test_a_resolved_key_fires_a_new_alert(store):
    first = await store.record(KETTLE, event(), SERIES)
    await store.resolve(first.id, "sup", "已下架")
    second = await store.record(KETTLE, event(), SERIES)
    assert second.id != first.id and second.status == "open"
    assert [a.id for a in await store.list(status="live")] == [second.id]
    assert [a.id for a in await store.list(status="resolved")] == [first.id]


async def test_staff_transitions_and_refusals(store):
    alert = await store.record(KETTLE, event(), SERIES)
    acked = await store.acknowledge(alert.id, "sup")
    assert acked.status == "acknowledged" and acked.version == alert.version + 1
    with pytest.raises(AlertError):
        await store.acknowledge(alert.id, "sup")
    assigned = await store.assign(alert.id, "sup", "agent7")
    assert assigned.assignee == "agent7"
    noted = await store.add_note(alert.id, "agent7", "已联系商家")
    assert noted.notes[-1]["by"] == "agent7" and noted.notes[-1]["text"] == "已联系商家"
    with pytest.raises(AlertError):
        await store.add_note(alert.id, "agent7", "   ")
    resolved = await store.resolve(alert.id, "sup", "商家已召回")
    assert resolved.status == "resolved" and resolved.resolved_at and resolved.notes[-1]["text"] == "商家已召回"
    assert [h["op"] for h in resolved.history] == ["create", "acknowledge", "assign", "note", "resolve"]
    assert [h["by"] for h in resolved.history][1:] == ["sup", "sup", "agent7", "sup"]
    for refused in (store.resolve(alert.id, "sup"), store.assign(alert.id, "sup", "x"),
                    store.acknowledge(alert.id, "x")):
        with pytest.raises(AlertError):
            await refused
    assert (await store.get(alert.id)).version == resolved.version
    with pytest.raises(AlertError):
        await store.resolve("R20990101-nope", "sup")
    assert await store.get("R20990101-nope") is None


async def test_only_safety_alerts_are_confirmed_and_the_first_confirmation_counts(store):
    trend = await store.record(KETTLE, event(), SERIES)
    with pytest.raises(AlertError):
        await store.confirm(trend.id, "sup")
    fire = await store.record(FIRE, event("safety", "fire", "电饭煲着火了"), SERIES)
    assert fire.safety and fire.severity == "urgent"
    confirmed = await store.confirm(fire.id, "sup1")
    again = await store.confirm(fire.id, "sup2")
    assert confirmed.confirmed_by == again.confirmed_by == "sup1" and again.version == confirmed.version
    warned = await store.record_warning(fire.id, {"sent": 3, "already": 0, "unreachable": 1, "failed": 0})
    assert warned.warning == {"sent": 3, "already": 0, "unreachable": 1, "failed": 0}
    assert warned.history[-1]["op"] == "warn"


async def test_filters_combine_and_list_newest_first(store):
    a = await store.record(KETTLE, event(), SERIES)
    b = await store.record(replace(KETTLE, key="sku:SKU-10001|return:quality", value="SKU-10001"),
                           new_event("return", "quality", "web", sku="SKU-10001", merchant="m-huayi",
                                     category="服装鞋包"), SERIES)
    c = await store.record(FIRE, event("safety", "fire"), SERIES)
    assert [x.id for x in await store.list()] == [c.id, b.id, a.id]
    assert [x.id for x in await store.list(merchant="m-jiadian")] == [c.id, a.id]
    assert [x.id for x in await store.list(category="服装鞋包")] == [b.id]
    assert [x.id for x in await store.list(merchant="m-jiadian", severity="urgent")] == [c.id]
    await store.acknowledge(a.id, "sup")
    assert [x.id for x in await store.list(status="open")] == [c.id, b.id]
    assert [x.id for x in await store.list(status="acknowledged", merchant="m-jiadian")] == [a.id]
    assert [x.id for x in await store.list(limit=2)] == [c.id, b.id]
    assert await store.list(merchant="m-nobody") == []


async def test_every_change_is_published(redis, store):
    pubsub = redis.pubsub()
    await pubsub.subscribe(store.channel)
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    alert = await store.record(FIRE, event("safety", "fire"), SERIES)
    await store.acknowledge(alert.id, "sup")
    await store.confirm(alert.id, "sup")
    seen = []
    while len(seen) < 3:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
        assert message is not None, seen
        seen.append(json.loads(message["data"]))
    await pubsub.close()
    assert seen == [{"id": alert.id, "op": op, "version": v, "severity": "urgent"}
                    for op, v in (("create", 1), ("acknowledge", 2), ("confirm", 3))]


def test_a_sample_holds_no_personal_data():
    sample = sample_of(new_event("complaint", "quality", "web", order_id="20261201000011", customer_id="c1001",
                                 text="我的手机13800001234，电饭煲冒烟"))
    text = json.dumps(sample, ensure_ascii=False)
    assert "13800001234" not in text and "c1001" not in text and "20261201000011" not in text
    assert "冒烟" in sample["excerpt"]


async def test_the_same_event_recorded_again_adds_no_second_sample(store):
    again = event(text="重复投递")
    await store.record(KETTLE, again, SERIES)
    alert = await store.record(KETTLE, again, SERIES)
    assert [s["excerpt"] for s in alert.samples] == ["重复投递"]
