"""The worker gives the detector the store's promotion days (real Redis). With
`baseline_skips_promotions` on, a SKU whose share soared on the 双11 home page last week still
alarms on a burst today; without the calendar it cannot. (The shipped thresholds keep promotion
days in the baseline and only test promotion windows more strictly: knowledge/risk_thresholds.yml
says why, measured with `make risk-eval`.)"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest

from bot.risk.alerts import AlertStore
from bot.risk.detector import SHANGHAI, Promotion, PromotionCalendar, load_thresholds
from bot.risk.events import new_event
from bot.risk.stream import RiskStream
from bot.risk.worker import RiskWorker

NOW = dt.datetime(2026, 12, 1, 15, 30, tzinfo=SHANGHAI).timestamp()
CALENDAR = PromotionCalendar((Promotion("双11", dt.date(2026, 11, 20), dt.date(2026, 11, 24)),), (("return", 0),))
SKU_KEY = "sku:SKU-60001|return:quality"


async def seed_history(worker: RiskWorker, th) -> None:
    """The kind at 50 an hour; the SKU once every 12 hours, but 5 an hour on the promotion days."""
    end = worker.bucket(NOW)
    total, mine = {}, {}
    for b in range(end - th.history_hours + 1, end):
        total[str(b)] = 50
        if b >= end - max(th.windows_h):
            continue  # the windows: the kind's volume, the SKU quiet until the burst
        on_promotion = CALENDAR.on_promotion("return", dt.datetime.fromtimestamp(b * 3600, SHANGHAI).date())
        if on_promotion:
            mine[str(b)] = 5
        elif b % 12 == 0:
            mine[str(b)] = 1
    await worker._redis.hset(worker.counts_key("all|return"), mapping=total)
    await worker._redis.hset(worker.counts_key(SKU_KEY), mapping=mine)


async def sku_alerts_after_a_burst(redis, calendar: PromotionCalendar) -> list:
    prefix = f"test:{uuid.uuid4().hex}:"
    th = dataclasses.replace(load_thresholds(), promotions=calendar, baseline_skips_promotions=True)
    worker = RiskWorker(redis, AlertStore(redis, prefix), th, "w1", prefix, clock=lambda: NOW)
    await worker.ensure_group()
    await seed_history(worker, th)
    for _ in range(15):
        await RiskStream(redis, prefix).publish(new_event("return", "quality", "web", at=NOW, sku="SKU-60001",
                                                          merchant="m-jiadian", category="家用电器"))
    await worker.process_once(block_ms=100)
    return [a for a in await AlertStore(redis, prefix).list() if a.key == SKU_KEY]


async def test_a_promotion_in_the_baseline_no_longer_hides_a_burst(redis):
    [alert] = await sku_alerts_after_a_burst(redis, CALENDAR)
    assert alert.observed == 15 and alert.ratio >= 3


async def test_without_the_calendar_the_promotion_hides_it(redis):
    assert await sku_alerts_after_a_burst(redis, PromotionCalendar()) == []
