"""Limits on uploaded photos: quotas per sender and for everyone, and a retention period.

Quotas (Settings): per sender, uploads an hour and bytes a day; for everyone, uploads an hour and
bytes a day. A sender is counted twice, as its signed web session (when it names one) and as its
client IP, so minting new sessions does not reset the count. The counters live in Redis (shared by
every web-app replica), one fixed-window key per quota, and are reserved atomically before the
file is written: one Lua script checks every quota and adds the upload only if all have room. When
Redis cannot be reached the upload is refused (503): unlimited uploads are what this prevents.

Files live in their own folder (UPLOADS_DIR, by default var/uploads; production should put it on a
volume of its own, so that a full disk cannot stop Redis), and are deleted UPLOAD_RETENTION_DAYS
after upload by a sweep the web app runs at start and every hour.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from functools import lru_cache
from pathlib import Path
from typing import List, Optional, Tuple

import redis.asyncio as aioredis
import yaml
from aiohttp import web

from bot.paths import SYSTEM_MESSAGES

logger = logging.getLogger(__name__)
PREFIX = "xb:uploads:"
HOUR_S, DAY_S = 3600, 86400
SWEEP_INTERVAL_S = 3600

# KEYS: counters; ARGV: n, then per key: amount, limit, ttl. All or nothing.
_RESERVE = """
local n = tonumber(ARGV[1])
for i = 1, n do
  local amount, limit = tonumber(ARGV[2 + (i - 1) * 3]), tonumber(ARGV[3 + (i - 1) * 3])
  local current = tonumber(redis.call('GET', KEYS[i]) or '0')
  if limit >= 0 and current + amount > limit then return i end
end
for i = 1, n do
  local amount, ttl = tonumber(ARGV[2 + (i - 1) * 3]), tonumber(ARGV[4 + (i - 1) * 3])
  if redis.call('INCRBY', KEYS[i], amount) == amount then redis.call('EXPIRE', KEYS[i], ttl) end
end
return 0
"""


@lru_cache(maxsize=1)
def quota_message() -> str:
    """The shopper-facing refusal (knowledge/system_messages.yml), without importing Rasa here."""
    return yaml.safe_load(SYSTEM_MESSAGES.read_text(encoding="utf-8"))["upload_quota"]


def _subject(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class UploadQuota:
    def __init__(self, redis: aioredis.Redis, settings) -> None:
        self.redis, self.settings = redis, settings
        self._reserve = redis.register_script(_RESERVE)

    def _counters(self, senders: List[str], size: int, now: float) -> List[Tuple[str, int, int, int]]:
        hour, day = int(now // HOUR_S), int(now // DAY_S)
        s = self.settings
        counters = []
        for sender in senders:
            subject = _subject(sender)
            counters.append((f"{PREFIX}n:{subject}:{hour}", 1, s.uploads_per_sender_hour, HOUR_S))
            counters.append((f"{PREFIX}b:{subject}:{day}", size, s.upload_bytes_per_sender_day, DAY_S))
        counters.append((f"{PREFIX}n:all:{hour}", 1, s.uploads_global_hour, HOUR_S))
        counters.append((f"{PREFIX}b:all:{day}", size, s.upload_bytes_global_day, DAY_S))
        return counters

    async def reserve(self, senders: List[str], size: int, now: Optional[float] = None) -> bool:
        """Counts one upload of `size` bytes against every quota, if all have room; else False."""
        counters = self._counters(senders, size, time.time() if now is None else now)
        args: List[int] = [len(counters)]
        for _key, amount, limit, ttl in counters:
            args += [amount, limit, ttl]
        refused = await self._reserve(keys=[key for key, *_ in counters], args=args)
        if refused:
            logger.warning("upload refused: quota %s is used up", counters[int(refused) - 1][0].split(":")[2])
        return not refused


def sweep(folder: Path, retention_days: float, now: Optional[float] = None) -> int:
    """Deletes uploads older than the retention period; returns how many."""
    cutoff = (time.time() if now is None else now) - retention_days * DAY_S
    removed = 0
    if not folder.is_dir():
        return 0
    for path in folder.iterdir():
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    if removed:
        logger.info("deleted %d uploads older than %s days from %s", removed, retention_days, folder)
    return removed


def sweeper(settings_of):
    """An aiohttp cleanup context: sweeps the uploads folder at start, then every hour."""

    async def context(app: web.Application):
        async def run() -> None:
            while True:
                settings = settings_of(app)
                try:
                    await asyncio.get_running_loop().run_in_executor(
                        None, sweep, settings.uploads_dir, settings.upload_retention_days)
                except OSError:
                    logger.exception("could not sweep old uploads")
                await asyncio.sleep(SWEEP_INTERVAL_S)

        settings = settings_of(app)
        sweep(settings.uploads_dir, settings.upload_retention_days)  # before the first request
        task = asyncio.create_task(run())
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return context
