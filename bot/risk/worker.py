"""The consumer side of the rights-signal stream: count each event once, assess, record alerts.

Every worker (one or more per deployment, any replica) is a member of the consumer group GROUP
on the stream (bot/risk/stream.py) under a name unique to its process. For each entry:

1. Parse it. A malformed entry is acknowledged and logged (its stream id only): it can never be
   processed, and must not stop the worker or come back forever.
2. One Lua script counts it: unless the event's id was already applied (a set per event day,
   kept DEDUPE_DAYS days: redeliveries and a producer's retry both come sooner), it adds 1 to the
   current hourly bucket of each of its series keys (detector.series_keys), of its kind's total
   (detector.totals_key) and, for a safety report, of the SKU's and the merchant's safety count.
   The check and the counts are one script, so two consumers, or one that dies half-way, never
   count an event twice or partly.
3. It reads the keys' last `history_hours` buckets and asks the detector: `assess_safety` at once
   for a safety report (on its most specific key), `assess_trend` for every key otherwise, and
   records each finding (AlertStore.record).
4. Only then XACK. A worker killed between 2 and 4 leaves the entry pending; another worker claims
   it (XAUTOCLAIM, entries idle longer than `claim_idle_ms`), finds the event already counted, and
   still assesses and records it: counts exactly once, alerts at least once. (Acknowledging inside
   the counting script would lose the alert of an event whose worker died right after counting —
   for a safety report that is the one thing that must not be lost.)

`run(stop)` loops until `stop` is set and rides out Redis outages (log, back off, retry). About
once a day one replica (a SET NX lock) runs the retention purge (bot/risk/retention.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from bot.risk import detector, retention
from bot.risk.alerts import AlertStore
from bot.risk.detector import SeriesKey, Thresholds
from bot.risk.events import SAFETY, RiskEvent
from bot.risk.stream import GROUP, PREFIX, stream_key

logger = logging.getLogger(__name__)

BATCH = 100
DEDUPE_DAYS = 35  # longer than the baseline (28 days) and any redelivery
SERIES_DAYS = 7  # the hourly series an alert shows
CLAIM_IDLE_MS = 5000  # a pending entry idle this long belongs to a dead (or stuck) consumer
CLAIM_EVERY_S = 5.0
PURGE_EVERY_S = 3600.0  # how often a worker tries for the daily purge lock
MAX_BACKOFF_S = 30.0

# Counts one event once. KEYS[1] the day's applied set, KEYS[2] the registry of count keys,
# KEYS[3..] the count hashes. ARGV[1] event id, ARGV[2] bucket (hour number), ARGV[3] set TTL (s).
# Returns 1 when counted now, 0 when already counted.
_APPLY = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[3])
for i = 3, #KEYS do
  redis.call('HINCRBY', KEYS[i], ARGV[2], 1)
  redis.call('SADD', KEYS[2], KEYS[i])
end
return 1
"""


def consumer_name() -> str:
    """Unique per process, readable in XINFO CONSUMERS: host, pid and a random tail."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def safety_count_key(dimension: str, value: str) -> str:
    """All safety reports on a SKU or a merchant, whatever their reason."""
    return f"{dimension}:{value}|{SAFETY}:*"


def safety_key(event: RiskEvent) -> SeriesKey:
    """The one key a safety alert is raised on: the SKU, else the merchant, the category, or (with
    no order at all) the whole store — a safety report always raises an alert."""
    for key in detector.series_keys(event):
        return key
    return SeriesKey("store", "all", event.kind, event.reason)


def counted_keys(event: RiskEvent) -> List[str]:
    """Every series an event adds 1 to (as strings)."""
    keys = [str(k) for k in detector.series_keys(event)] + [detector.totals_key(event.kind)]
    if event.kind == SAFETY:
        keys += [safety_count_key(d, v) for d, v in (("sku", event.sku), ("merchant", event.merchant)) if v]
        if not detector.series_keys(event):
            keys.append(str(safety_key(event)))
    return keys


def series_of(counts: Sequence[int], end_bucket: int, bucket_s: int, expected_per_bucket: float) -> Dict[str, Any]:
    """The evidence chart of an alert: the last SERIES_DAYS of hourly counts."""
    shown = list(counts)[-SERIES_DAYS * 24:]
    return {"start": (end_bucket - len(shown) + 1) * bucket_s, "bucket_s": bucket_s, "counts": shown,
            "expected_per_bucket": round(expected_per_bucket, 4)}


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class RiskWorker:
    def __init__(self, redis: aioredis.Redis, alerts: AlertStore, thresholds: Thresholds, name: str,
                 prefix: str = PREFIX, *, clock: Callable[[], float] = time.time,
                 claim_idle_ms: int = CLAIM_IDLE_MS, claim_every_s: float = CLAIM_EVERY_S) -> None:
        self._redis = redis
        self._alerts = alerts
        self._th = thresholds
        self.name = name
        self._prefix = prefix
        self._clock = clock
        self._claim_idle_ms = claim_idle_ms
        self._claim_every_s = claim_every_s
        self.stream = stream_key(prefix)
        self._apply = redis.register_script(_APPLY)
        self._group_ready = False
        self._last_claim = float("-inf")
        self._last_purge_try = float("-inf")

    # -- keys -------------------------------------------------------------------------------
    def counts_key(self, series: str) -> str:
        return f"{self._prefix}counts:{series}"

    def bucket(self, at: float) -> int:
        return int(at // self._th.bucket_s)

    # -- the group --------------------------------------------------------------------------
    async def ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._group_ready = True

    # -- one round --------------------------------------------------------------------------
    async def process_once(self, block_ms: int = 1000) -> int:
        """Claims entries of dead consumers (at first, then every claim_every_s), then reads new
        ones (blocking up to block_ms) and processes them. Returns how many entries were handled."""
        if not self._group_ready:
            await self.ensure_group()
        handled = 0
        if time.monotonic() - self._last_claim >= self._claim_every_s:
            handled += await self.claim_abandoned()
        try:
            reply = await self._redis.xreadgroup(GROUP, self.name, {self.stream: ">"}, count=BATCH,
                                                 block=block_ms if not handled else 1)
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            self._group_ready = False  # the stream was deleted: recreate group and stream next round
            return handled
        for _, entries in reply or []:
            handled += await self._handle_all(entries)
        return handled

    async def claim_abandoned(self) -> int:
        """Takes over entries pending longer than claim_idle_ms (their consumer died) and processes
        them. Returns how many."""
        self._last_claim = time.monotonic()
        handled, start = 0, "0-0"
        while True:
            reply = await self._redis.xautoclaim(self.stream, GROUP, self.name, self._claim_idle_ms,
                                                 start_id=start, count=BATCH)
            start, entries = _text(reply[0]), reply[1]
            if entries:
                logger.info("claimed %d abandoned rights events", len(entries))
            handled += await self._handle_all(entries)
            if start == "0-0":  # a page may claim nothing (entries still fresh) and go on
                return handled

    async def _handle_all(self, entries: Iterable[Tuple[Any, Any]]) -> int:
        handled = 0
        for entry_id, fields in entries:
            if entry_id is None:
                continue  # an entry trimmed while pending (Redis 6.2 shows no id)
            await self.handle(_text(entry_id), fields)
            handled += 1
        return handled

    async def handle(self, entry_id: str, fields: Optional[Dict[Any, Any]]) -> None:
        """Counts, assesses and records one entry, then acknowledges it."""
        try:
            event = RiskEvent.from_fields(fields or {})
        except ValueError:
            logger.warning("malformed rights event %s acknowledged and skipped", entry_id)
            await self._redis.xack(self.stream, GROUP, entry_id)
            return
        await self.count(event)
        try:
            await self.assess(event)
        except (RedisError, OSError):
            raise  # left pending: assessed again when Redis is back (counted once all the same)
        except Exception as error:  # noqa: BLE001 - one event that breaks the detector must not stop the rest
            logger.error("rights event %s counted but not assessed: %s", entry_id, type(error).__name__)
        await self._redis.xack(self.stream, GROUP, entry_id)

    async def count(self, event: RiskEvent) -> bool:
        """Adds the event to its hourly buckets unless its id was counted before. True if counted now."""
        day = int(event.at // 86400)
        keys = [f"{self._prefix}applied:{day}", f"{self._prefix}count-keys",
                *[self.counts_key(k) for k in counted_keys(event)]]
        ttl = max(DEDUPE_DAYS * 86400 - max(0, int(self._clock() - day * 86400)), 86400)
        return bool(await self._apply(keys=keys, args=[event.id, self.bucket(event.at), ttl]))

    async def read_counts(self, series: Sequence[str], hours: int) -> Dict[str, List[int]]:
        """The last `hours` hourly buckets of each series, oldest first, ending with the current hour."""
        end = self.bucket(self._clock())
        fields = [str(b) for b in range(end - hours + 1, end + 1)]
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in series:
                pipe.hmget(self.counts_key(name), fields)
            replies = await pipe.execute()
        return {name: [int(v) if v is not None else 0 for v in reply] for name, reply in zip(series, replies)}

    async def assess(self, event: RiskEvent) -> list:
        """Asks the detector about every key the event touched; records what it finds."""
        if event.kind == SAFETY:
            return [await self._assess_safety(event)]
        keys = detector.series_keys(event)
        if not keys:
            return []
        total = detector.totals_key(event.kind)
        counts = await self.read_counts([total, *map(str, keys)], self._th.history_hours)
        end = self.bucket(self._clock())
        # Promotion days (the store's calendar) stay out of the baseline share.
        starts = [b * self._th.bucket_s for b in range(end - len(counts[total]) + 1, end + 1)]
        excluded = self._th.promotions.excluded(event.kind, starts)
        recorded = []
        for key in keys:
            finding = detector.assess_trend(key, counts[str(key)], counts[total], self._th, excluded)
            if finding is not None:
                series = series_of(counts[str(key)], end, self._th.bucket_s,
                                   finding.expected / max(finding.window_h, 1))
                recorded.append(await self._alerts.record(finding, event, series))
        return recorded

    async def _assess_safety(self, event: RiskEvent):
        key = safety_key(event)
        window = self._th.safety_window_h
        names = [safety_count_key(d, v) for d, v in (("sku", event.sku), ("merchant", event.merchant))]
        wanted = [str(key)] + [n for n, v in zip(names, (event.sku, event.merchant)) if v]
        counts = await self.read_counts(wanted, max(window, SERIES_DAYS * 24))
        recent = {name: sum(values[-window:]) for name, values in counts.items()}
        sku_reports = max(recent.get(names[0], 0), 1) if event.sku else 1
        merchant_reports = max(recent.get(names[1], 0), 1) if event.merchant else 1
        finding = detector.assess_safety(key, sku_reports, merchant_reports, self._th)
        series = series_of(counts[str(key)], self.bucket(self._clock()), self._th.bucket_s, 0.0)
        return await self._alerts.record(finding, event, series)

    # -- the loop ---------------------------------------------------------------------------
    async def run(self, stop: Optional[asyncio.Event] = None) -> None:
        """Processes the stream until `stop` is set; survives Redis outages."""
        stop = stop or asyncio.Event()
        backoff = 0.5
        while not stop.is_set():
            try:
                await self.process_once()
                await self._maybe_purge()
                backoff = 0.5
            except (RedisError, OSError) as error:
                self._group_ready = False
                logger.warning("risk worker %s: Redis unavailable (%s); retrying in %.1f s",
                               self.name, type(error).__name__, backoff)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=backoff)
                except asyncio.TimeoutError:
                    pass
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _maybe_purge(self) -> None:
        if time.monotonic() - self._last_purge_try < PURGE_EVERY_S:
            return
        self._last_purge_try = time.monotonic()
        result = await retention.purge_once_a_day(self._redis, self._clock(), self._th, self._prefix)
        if result is not None:
            logger.info("risk retention purge: %s", result)
