"""Reading a conversation's stored event log without Rasa (the action server must not import it).

The tracker store (bot.stores.redis.RedisEventLogTrackerStore) writes and reads the same keys with
the same script; this module holds the key naming and the read, so the action server and the
console can read a conversation while importing only redis.

Keys (one `{sender}` hash tag, so one Redis Cluster slot): `<prefix>:events:{sender}` (list of JSON
events) and `<prefix>:meta:{sender}` (hash: `session` = index of the latest
`action_session_start`, `gen` = rewrite counter).
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Text

import redis.asyncio as aioredis

DEFAULT_PREFIX = "xiaobao"

# KEYS: events, meta. ARGV: 1 = latest session only. Returns {gen, stored length, offset, events...}.
_READ = """
local n = redis.call('LLEN', KEYS[1])
if n == 0 then return {0, 0, 0} end
local gen = tonumber(redis.call('HGET', KEYS[2], 'gen') or '0')
local offset = 0
if ARGV[1] == '1' then offset = tonumber(redis.call('HGET', KEYS[2], 'session') or '0') end
if offset >= n then offset = 0 end
local result = {gen, n, offset}
local events = redis.call('LRANGE', KEYS[1], offset, -1)
for i = 1, #events do result[#result + 1] = events[i] end
return result
"""


def _conversation_keys(prefix: Text, sender_id: Text) -> List[str]:
    """The event list and meta hash of a conversation (one `{sender}` hash tag: one Cluster slot)."""
    return [f"{prefix}:events:{{{sender_id}}}", f"{prefix}:meta:{{{sender_id}}}"]


async def session_events(client: aioredis.Redis, sender_id: Text, prefix: Text = DEFAULT_PREFIX) -> List[Dict[str, Any]]:
    """The latest session of a conversation as stored, as event dicts: everything up to the last
    saved turn. (Rasa and the action server work on a window of it; see bot.stores.redis.WINDOW_TURNS.)"""
    _gen, _stored, _offset, *raw = await client.eval(_READ, 2, *_conversation_keys(prefix, sender_id), "1")
    return [json.loads(event) for event in raw]
