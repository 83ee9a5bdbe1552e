"""Shared, atomic rate limits and ownership records in Redis, for every replica and channel.

`hit` counts one event in a fixed window: one Lua script (INCR, and EXPIRE on the first event of
a window), so concurrent replicas never race and no counter outlives its window. Callers reserve
before they act (count first, then check the count), so parallel attempts cannot slip past a
limit; `release` gives a reservation back when the attempt turned out not to count (a right
answer).

Keys are `xb:limit:<kind>:<sha256 of the subject>`: shopper-chosen strings (order ids, sender
ids) never become raw key names.

Uploads: `record_upload` notes who made an upload (`xb:upload:<name>`); `claim_upload` lets the
conversation that made it (or, for an upload recorded without a conversation, the first one to
use it) use it as evidence, and nobody else.
"""

from __future__ import annotations

import hashlib
import re
from typing import Optional

import redis.asyncio as aioredis

LIMIT_PREFIX = "xb:limit:"
UPLOAD_PREFIX = "xb:upload:"
UPLOAD_TTL_S = 90 * 24 * 3600
UNOWNED = "-"  # an upload made without a conversation id: the first conversation to use it owns it
UPLOAD_NAME = re.compile(r"^[0-9a-f]{32}\.(jpg|png|webp)$")

_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""
_RELEASE = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then return redis.call('DECR', KEYS[1]) end
return 0
"""
# Owner of an upload: the recorded one, or this conversation when unowned (atomic claim).
_CLAIM = """
local owner = redis.call('GET', KEYS[1])
if not owner then return false end
if owner == ARGV[2] then redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL') return ARGV[1] end
return owner
"""


def limit_key(kind: str, subject: str) -> str:
    return f"{LIMIT_PREFIX}{kind}:{hashlib.sha256(subject.encode('utf-8', 'surrogatepass')).hexdigest()}"


async def hit(redis: aioredis.Redis, kind: str, subject: str, window_s: int) -> int:
    """Counts one event for `subject` in the current window of `window_s`; returns the count so far."""
    return int(await redis.eval(_HIT, 1, limit_key(kind, subject), int(window_s)))


async def count(redis: aioredis.Redis, kind: str, subject: str) -> int:
    return int(await redis.get(limit_key(kind, subject)) or 0)


async def release(redis: aioredis.Redis, kind: str, subject: str) -> None:
    """Gives back one reserved event (never below zero)."""
    await redis.eval(_RELEASE, 1, limit_key(kind, subject))


def upload_name(reference: str) -> Optional[str]:
    """The stored file name of one of our upload references, else None.

    Web uploads are `<scheme>://<host>/uploads/<name>`; WeChat photos are `wechat-media:<name>`.
    """
    if not isinstance(reference, str):
        return None
    if reference.startswith("wechat-media:"):
        name = reference[len("wechat-media:"):]
    elif "/uploads/" in reference:
        name = reference.rsplit("/uploads/", 1)[1]
    else:
        return None
    return name if UPLOAD_NAME.match(name) else None


async def record_upload(redis: aioredis.Redis, name: str, sender_id: Optional[str] = None) -> None:
    """Notes an upload we stored, with the conversation that made it when known."""
    await redis.set(UPLOAD_PREFIX + name, sender_id or UNOWNED, ex=UPLOAD_TTL_S, nx=True)


async def claim_upload(redis: aioredis.Redis, name: str, sender_id: str) -> bool:
    """True when `sender_id` made this upload (or is the first to use an upload of no conversation)."""
    owner = await redis.eval(_CLAIM, 1, UPLOAD_PREFIX + name, sender_id, UNOWNED)
    if isinstance(owner, bytes):
        owner = owner.decode()
    return owner == sender_id
