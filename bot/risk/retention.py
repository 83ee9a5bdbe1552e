"""Data retention for the risk early warning (issue 15).

Rights events are transaction information: 电子商务法 第三十一条 has them kept at least three years
after the transaction, so the stream keeps `thresholds.retention_days` (at least 1096 days, checked
by detector.load_thresholds) and is trimmed beyond that (XTRIM MINID: stream ids are the time the
event was added). What is kept holds no personal data: orders and customers are HMAC pseudonyms
and excerpts are masked when an event is made (bot/risk/events.py).

Derived data lives only as long as it is useful: hourly count buckets older than the detector
reads (history, the safety window, the alert chart) are dropped; the applied-event sets expire by
their own TTL (bot/risk/worker.py); resolved alerts are removed after the retention period, open
ones never; consumers of the group that left nothing pending and were idle a day are removed.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bot.risk.alerts import AlertStore
from bot.risk.stream import GROUP, PREFIX, stream_key

logger = logging.getLogger(__name__)

DAY_S = 86400
LOCK_S = 23 * 3600  # one purge a day, by whichever replica takes the lock first
CHART_HOURS = 7 * 24
MARGIN_HOURS = 24
IDLE_CONSUMER_MS = DAY_S * 1000

# Drops the buckets of one count hash older than ARGV[1] (an hour number), and forgets the hash
# in the registry (KEYS[2]) once it is empty: in one script, so a worker's concurrent count
# (which adds to both) is never forgotten.
_PRUNE = """
local dropped = 0
local keep = tonumber(ARGV[1])
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if tonumber(field) == nil or tonumber(field) < keep then
    redis.call('HDEL', KEYS[1], field)
    dropped = dropped + 1
  end
end
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], KEYS[1]) end
return dropped
"""


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def bucket_hours_kept(thresholds) -> int:
    """How many hours of counts the detector and the alert chart read, with a day to spare."""
    return max(thresholds.history_hours, thresholds.safety_window_h, CHART_HOURS) + MARGIN_HOURS


async def purge(redis: aioredis.Redis, now: float, thresholds, prefix: str = PREFIX) -> Dict[str, int]:
    """Removes what is past retention. Returns how many events, buckets, alerts and consumers went."""
    cutoff = now - thresholds.retention_days * DAY_S
    events = await redis.xtrim(stream_key(prefix), minid=f"{int(cutoff * 1000)}-0", approximate=False)
    buckets = await _prune_counts(redis, int(now // thresholds.bucket_s) - bucket_hours_kept(thresholds), prefix)
    alerts = await AlertStore(redis, prefix).purge_resolved(cutoff)
    consumers = await _drop_idle_consumers(redis, prefix)
    return {"events": int(events), "buckets": buckets, "alerts": alerts, "consumers": consumers}


async def purge_once_a_day(redis: aioredis.Redis, now: float, thresholds,
                           prefix: str = PREFIX) -> Optional[Dict[str, int]]:
    """`purge`, when this replica takes the day's lock (SET NX); None when another one has it."""
    if not await redis.set(prefix + "retention-lock", str(int(now)), nx=True, ex=LOCK_S):
        return None
    return await purge(redis, now, thresholds, prefix)


async def _prune_counts(redis: aioredis.Redis, keep_from: int, prefix: str) -> int:
    registry = prefix + "count-keys"
    prune = redis.register_script(_PRUNE)
    dropped = 0
    async for key in redis.sscan_iter(registry, count=500):
        dropped += int(await prune(keys=[_text(key), registry], args=[keep_from]))
    return dropped


async def _drop_idle_consumers(redis: aioredis.Redis, prefix: str) -> int:
    """Consumer names are unique per process, so restarts leave old names behind in the group."""
    try:
        consumers = await redis.xinfo_consumers(stream_key(prefix), GROUP)
    except ResponseError:  # no stream or no group yet
        return 0
    dropped = 0
    for consumer in consumers:
        if int(consumer.get("pending", 0)) == 0 and int(consumer.get("idle", 0)) > IDLE_CONSUMER_MS:
            dropped += 1
            await redis.xgroup_delconsumer(stream_key(prefix), GROUP, consumer["name"])
    return dropped
