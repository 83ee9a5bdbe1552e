"""Rasa tracker and lock stores on Redis, safe to share between several Rasa replicas.

Rasa's stock Redis stores have three problems this module fixes:

* `RedisTrackerStore` re-reads, merges and re-writes the whole conversation as one JSON blob on
  every turn, so a turn gets slower the longer the conversation is. `RedisEventLogTrackerStore`
  keeps one Redis list per conversation and appends only the new events.
* `RedisLockStore` reads, modifies and writes its ticket lock in separate commands, so two
  processes can both believe they hold it (rasa issue #9213), and waiters poll once a second.
  `RedisTicketLockStore` issues, grants and releases tickets in Lua scripts (atomic on the server)
  and waiters poll every few milliseconds.
* Both give up on the first connection error. Here the clients reconnect and retry with
  exponential backoff (about 4 s in total), so a Redis restart delays a turn instead of dropping it.

Fencing: every save says how many events it expects the stored list to have. If another writer
got there first (a lock lost to expiry, or a rewritten conversation) the save is refused with
`TrackerConflict`, nothing is written, and the channel asks the shopper to resend, so events are
never lost, duplicated or reordered.

History is never replaced implicitly. A tracker that does not extend the stored conversation (for
instance the brand-new tracker Rasa makes when a read failed) is refused; only
`PUT /conversations/<id>/tracker/events` replaces a conversation (`outcome.may_replace`). When a
watched turn (`bot.stores.outcome`) cannot read its conversation, the store hands Rasa a paused
stand-in, so no policy or action runs on a conversation nobody can see, and never writes it.
Failures of a watched turn are recorded on its outcome instead of raised, because Rasa's
`FailSafeTrackerStore` would swallow the exception and save the turn to memory.

Keys (all of a conversation's keys share the `{sender}` hash tag, so they live in one Redis
Cluster slot): `<prefix>:events:{sender}` (list of JSON events), `<prefix>:meta:{sender}` (hash:
`session` = index of the latest `action_session_start`, `gen` = rewrite counter),
`<prefix>:lock:{sender}` (hash: `next`, `serving`, `tok:<ticket>` = holder token) and `<prefix>:lease:{sender}` (sorted set of
tickets by lease expiry in ms).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import OrderedDict
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict, Iterable, List, Optional, Sequence, Text, Tuple

import redis
import redis.asyncio as aioredis
from rasa.core.brokers.broker import EventBroker
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LockError, LockStore
from rasa.core.tracker_store import TrackerStore
from rasa.shared.core.constants import ACTION_SESSION_START_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, ConversationPaused, Event, SlotSet, UserUttered
from rasa.shared.core.conversation import Dialogue
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig
from redis.exceptions import BusyLoadingError

from bot.redis_url import async_redis
from bot.stores import outcome
from bot.stores.eventlog import DEFAULT_PREFIX, _READ, _conversation_keys, session_events  # noqa: F401 (re-exported)

logger = logging.getLogger(__name__)

DEFAULT_URL = "redis://localhost:6379/0"
# A Redis call that fails for want of a connection is retried with growing pauses for up to
# RETRY_WINDOW_S: enough to ride out a restart, short enough that a shopper is soon told to resend.
# (redis-py's own Retry nests a connect retry inside a command retry, so its total depends on
# whether a pooled connection existed: 0.7 s or a minute for the same settings.)
RETRY_WINDOW_S = 4.0
RECENT_TRACKERS = 256
# Rasa featurizes a tracker's whole history at every prediction, so a turn costs more the longer
# the session. The tracker Rasa works on holds the state before the latest WINDOW_TURNS user turns
# and those turns; the event log in Redis keeps everything. Policies look back 4-5 turns.
WINDOW_TURNS = 10
WINDOW_SLACK = 5  # re-cut every WINDOW_SLACK turns, not every turn
SOCKET_TIMEOUT_S = 5.0
# OSError: a refused connect() surfaces as the builtin error before redis-py wraps it.
RETRIED_ERRORS = (redis.ConnectionError, redis.TimeoutError, BusyLoadingError, OSError)


class ResilientRedis:
    """An asyncio Redis client per event loop (a client's connections belong to one loop), whose
    calls retry connection errors and a server still loading its data for RETRY_WINDOW_S."""

    def __init__(self, url: str, retry_window_s: float = RETRY_WINDOW_S) -> None:
        self.url = url
        self.retry_window_s = retry_window_s
        self._client: Optional[aioredis.Redis] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def get(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = async_redis(self.url, socket_timeout=SOCKET_TIMEOUT_S,
                                                   socket_connect_timeout=SOCKET_TIMEOUT_S, health_check_interval=30)
            self._loop = loop
        return self._client

    async def call(self, method: str, *args: Any) -> Any:
        deadline = time.monotonic() + self.retry_window_s
        pause = 0.05
        while True:
            try:
                return await getattr(self.get(), method)(*args)
            except RETRIED_ERRORS:
                if time.monotonic() + pause > deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.5)

    async def eval(self, script: str, numkeys: int, *args: Any) -> Any:
        return await self.call("eval", script, numkeys, *args)


def _prefix(key_prefix: Optional[Text]) -> str:
    return key_prefix if key_prefix and str(key_prefix).isalnum() else DEFAULT_PREFIX


# --------------------------------------------------------------------------------------------
# Tracker store
# --------------------------------------------------------------------------------------------


class TrackerConflict(RuntimeError):
    """The stored conversation changed since this tracker was read; nothing was written."""


# KEYS: events, meta. ARGV: expected length, expected gen, session index or -1, ttl s or 0, events...
_APPEND = """
local n = redis.call('LLEN', KEYS[1])
local gen = tonumber(redis.call('HGET', KEYS[2], 'gen') or '0')
if n ~= tonumber(ARGV[1]) or gen ~= tonumber(ARGV[2]) then
  return redis.error_reply('CONFLICT stored ' .. n .. ' events, gen ' .. gen)
end
for i = 5, #ARGV, 500 do
  redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 499, #ARGV)))
end
if tonumber(ARGV[3]) >= 0 then redis.call('HSET', KEYS[2], 'session', ARGV[3]) end
if tonumber(ARGV[4]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
return n + #ARGV - 4
"""

# KEYS: events, meta. ARGV: session index or -1, ttl s or 0, events... Returns the new gen.
_REPLACE = """
redis.call('DEL', KEYS[1])
for i = 3, #ARGV, 500 do
  redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 499, #ARGV)))
end
redis.call('HSET', KEYS[2], 'session', math.max(tonumber(ARGV[1]), 0))
local gen = redis.call('HINCRBY', KEYS[2], 'gen', 1)
if tonumber(ARGV[2]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return gen
"""

# KEYS: events, meta. Returns {gen, stored length}.
_VERSION = """
return {tonumber(redis.call('HGET', KEYS[2], 'gen') or '0'), redis.call('LLEN', KEYS[1])}
"""


_STAND_IN = "_xiaobao_stand_in"


class _Persisted:
    """What a tracker object was read as: the stored list had `stored` events and generation `gen`,
    and the tracker's first `loaded` events are that list's last `loaded` entries."""

    ATTRIBUTE = "_xiaobao_persisted"

    def __init__(self, gen: int, stored: int, loaded: int, latest_session: bool = False) -> None:
        self.gen, self.stored, self.loaded = gen, stored, loaded
        self.latest_session = latest_session  # the tracker holds exactly the latest session

    @classmethod
    def of(cls, tracker: DialogueStateTracker) -> Optional["_Persisted"]:
        return getattr(tracker, cls.ATTRIBUTE, None)

    def mark(self, tracker: DialogueStateTracker) -> None:
        setattr(tracker, self.ATTRIBUTE, self)


def _last_session_start(events: Sequence[Event]) -> int:
    """Index of the last `action_session_start` in `events`, or -1."""
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        if isinstance(event, ActionExecuted) and event.action_name == ACTION_SESSION_START_NAME:
            return index
    return -1


def _state_events(tracker: DialogueStateTracker, timestamp: float) -> List[Event]:
    """Events that recreate `tracker`'s state: its set slots, its active form, its pause."""
    events: List[Event] = [SlotSet(slot.name, slot.value, timestamp=timestamp)
                           for slot in tracker.slots.values() if slot.value != slot.initial_value]
    if tracker.active_loop_name:
        events.append(ActiveLoop(tracker.active_loop_name, timestamp=timestamp))
    if tracker.is_paused():
        events.append(ConversationPaused(timestamp=timestamp))
    return events


def _dump(event: Event) -> str:
    return json.dumps(event.as_dict(), ensure_ascii=False)


class RedisEventLogTrackerStore(TrackerStore):
    """Conversations as append-only Redis lists of events; each save appends only what is new."""

    def __init__(
        self,
        domain: Domain,
        host: Text = DEFAULT_URL,
        event_broker: Optional[EventBroker] = None,
        record_exp: Optional[float] = None,
        key_prefix: Optional[Text] = None,
        **kwargs: Any,
    ) -> None:
        # Rasa passes the endpoint's `url` as `host`.
        super().__init__(domain, event_broker, **kwargs)
        self.prefix = _prefix(key_prefix)
        self.record_exp = int(record_exp or 0)
        self._redis = ResilientRedis(host or DEFAULT_URL)
        # Trackers this process saved last, by sender: a conversation's next turn usually comes
        # back here, and then needs neither the JSON nor the replay of every event (which grows
        # with the conversation). An entry is handed out once (popped) and only when Redis still
        # holds exactly what it was saved as, so other replicas' writes are never missed.
        self._recent: "OrderedDict[str, DialogueStateTracker]" = OrderedDict()
        self.recent_size = int(kwargs.get("recent_size", RECENT_TRACKERS))
        self.window_turns = int(kwargs.get("window_turns", WINDOW_TURNS))

    def _keys(self, sender_id: Text) -> List[str]:
        return _conversation_keys(self.prefix, sender_id)

    async def save(self, tracker: DialogueStateTracker) -> None:
        if getattr(tracker, _STAND_IN, False):
            return  # it stands for a conversation that could not be read: never written
        try:
            await self._save(tracker)
        except TrackerConflict as error:
            if not outcome.report(tracker.sender_id, outcome.CONFLICT):
                raise
            logger.warning("turn of conversation %s not stored: %s", tracker.sender_id, error)
        except RETRIED_ERRORS as error:
            if not outcome.report(tracker.sender_id, outcome.UNAVAILABLE):
                raise
            logger.error("turn of conversation %s not stored, Redis unavailable: %s", tracker.sender_id, error)

    async def _save(self, tracker: DialogueStateTracker) -> None:
        keys = self._keys(tracker.sender_id)
        events = list(tracker.events)
        persisted = _Persisted.of(tracker)
        if persisted is None or len(events) < persisted.loaded:
            persisted = await self._match_stored(keys, events)
        new_events = events[persisted.loaded:]
        if persisted.stored < 0:  # not an extension of what is stored
            if not outcome.may_replace(tracker.sender_id):
                raise TrackerConflict(f"conversation {tracker.sender_id}: the tracker does not extend the stored "
                                      "conversation; refused (only PUT .../tracker/events replaces one)")
            start = _last_session_start(events)
            gen = await self._redis.eval(_REPLACE, 2, *keys, start, self.record_exp, *map(_dump, events))
            _Persisted(int(gen), len(events), len(events)).mark(tracker)
        else:
            start = _last_session_start(new_events)
            session = persisted.stored + start if start >= 0 else -1
            # Reusable for the next turn if it holds the latest session: it did and none started
            # since, or nothing was stored before it (a new conversation's first turn: all of it).
            latest_session = (persisted.latest_session and start < 0) or persisted.stored == 0
            try:
                stored = await self._redis.eval(_APPEND, 2, *keys, persisted.stored, persisted.gen, session,
                                               self.record_exp, *map(_dump, new_events))
            except redis.ResponseError as error:
                if "CONFLICT" not in str(error):
                    raise
                raise TrackerConflict(f"conversation {tracker.sender_id} changed meanwhile: {error}") from error
            _Persisted(persisted.gen, int(stored), len(events), latest_session).mark(tracker)
            if latest_session:
                self._remember(tracker)
        if self.event_broker is not None and new_events:
            await self._stream_new_events(self.event_broker, new_events, tracker.sender_id)

    async def _match_stored(self, keys: List[str], events: List[Event]) -> _Persisted:
        """For a tracker this store did not hand out: how it relates to what is stored.

        If the stored events are a prefix of the tracker's, the rest is appended; otherwise
        `stored` is -1: the tracker would replace the stored conversation, which `_save` allows
        only to `PUT .../tracker/events`.
        """
        gen, stored, _offset, raw = await self._read(keys, latest_session_only=False)
        if stored == 0:
            return _Persisted(gen, 0, 0, latest_session=True)
        if len(raw) <= len(events) and all(json.loads(raw[i]) == events[i].as_dict() for i in range(len(raw))):
            return _Persisted(gen, stored, stored)
        return _Persisted(gen, -1, 0)

    async def _read(self, keys: List[str], latest_session_only: bool) -> Tuple[int, int, int, List[Any]]:
        gen, stored, offset, *raw = await self._redis.eval(_READ, 2, *keys, "1" if latest_session_only else "0")
        return int(gen), int(stored), int(offset), raw

    async def _retrieve(self, sender_id: Text, latest_session_only: bool) -> Optional[DialogueStateTracker]:
        gen, stored, _offset, raw = await self._read(self._keys(sender_id), latest_session_only)
        if stored == 0:
            return None
        dialogue = Dialogue.from_parameters({"name": sender_id, "events": [json.loads(event) for event in raw]})
        tracker = self.init_tracker(sender_id)
        tracker.recreate_from_dialogue(dialogue)
        _Persisted(gen, stored, len(tracker.events), latest_session_only).mark(tracker)
        return tracker

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        """The conversation's latest session (like Rasa's SQL store)."""
        try:
            tracker = await self._take_recent(sender_id)
            if tracker is None:
                tracker = await self._retrieve(sender_id, latest_session_only=True)
        except RETRIED_ERRORS as error:
            if not outcome.report(sender_id, outcome.UNAVAILABLE):
                raise
            logger.error("conversation %s could not be read, Redis unavailable: %s", sender_id, error)
            return self._stand_in(sender_id)
        return self._windowed(tracker) if tracker is not None else None

    def _stand_in(self, sender_id: Text) -> DialogueStateTracker:
        """What a watched turn gets when its conversation cannot be read: a paused tracker, so
        Rasa predicts and runs nothing, marked so that `save` never writes it."""
        tracker = self.init_tracker(sender_id)
        tracker.update(ConversationPaused())
        setattr(tracker, _STAND_IN, True)
        return tracker

    def _windowed(self, tracker: DialogueStateTracker) -> DialogueStateTracker:
        """`tracker` cut to its latest `window_turns` user turns, after events that restore the
        state (slots, active form, pause) at the cut. New events still append to the full log."""
        events = list(tracker.events)
        users = [index for index, event in enumerate(events) if isinstance(event, UserUttered)]
        if self.window_turns <= 0 or len(users) <= self.window_turns + WINDOW_SLACK:
            return tracker
        cut = users[-self.window_turns]
        before = DialogueStateTracker.from_events(tracker.sender_id, events[:cut], self.domain.slots)
        windowed = self.init_tracker(tracker.sender_id)
        windowed.update_with_events(_state_events(before, events[cut].timestamp) + events[cut:], None,
                                    override_timestamp=False)
        persisted = _Persisted.of(tracker)
        _Persisted(persisted.gen, persisted.stored, len(windowed.events), persisted.latest_session).mark(windowed)
        return windowed

    def _remember(self, tracker: DialogueStateTracker) -> None:
        self._recent.pop(tracker.sender_id, None)
        self._recent[tracker.sender_id] = tracker
        while len(self._recent) > self.recent_size:
            self._recent.popitem(last=False)

    async def _take_recent(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        tracker = self._recent.pop(sender_id, None)
        persisted = _Persisted.of(tracker) if tracker is not None else None
        if persisted is None or len(tracker.events) != persisted.loaded:  # changed since its save
            return None
        gen, stored = await self._redis.eval(_VERSION, 2, *self._keys(sender_id))
        if int(gen) != persisted.gen or int(stored) != persisted.stored:  # written elsewhere since
            return None
        return tracker

    async def retrieve_full_tracker(self, conversation_id: Text) -> Optional[DialogueStateTracker]:
        return await self._retrieve(conversation_id, latest_session_only=False)

    async def exists(self, conversation_id: Text) -> bool:
        return bool(await self._redis.call("exists", self._keys(conversation_id)[0]))

    async def keys(self) -> Iterable[Text]:
        pattern = f"{self.prefix}:events:{{*}}"
        start = len(pattern) - 2  # where the sender begins: after "{"
        return [key.decode()[start:-1] async for key in self._redis.get().scan_iter(match=pattern, count=500)]


# --------------------------------------------------------------------------------------------
# Lock store
# --------------------------------------------------------------------------------------------

# KEYS: lock, lease. ARGV: lease ms, holder token. Returns the new ticket.
# Ticket numbers are never reused: a queue that starts afresh (its keys expired or were never
# there) numbers from the server clock in microseconds, above every ticket any earlier queue of
# this conversation issued. The holder's random token is kept next to its ticket (`tok:<n>`).
_ISSUE = """
local function str(n) return string.format('%d', n) end  -- exact: ticket numbers exceed %.14g
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
if redis.call('HEXISTS', KEYS[1], 'next') == 0 then
  redis.call('HSET', KEYS[1], 'next', now[1] .. string.format('%06d', tonumber(now[2])))
end
local ticket = str(redis.call('HINCRBY', KEYS[1], 'next', 1))
redis.call('HSETNX', KEYS[1], 'serving', ticket)
redis.call('HSET', KEYS[1], 'tok:' .. ticket, ARGV[2])
redis.call('ZADD', KEYS[2], now_ms + tonumber(ARGV[1]), ticket)
redis.call('PEXPIRE', KEYS[1], 10 * tonumber(ARGV[1]))
redis.call('PEXPIRE', KEYS[2], 10 * tonumber(ARGV[1]))
return ticket
"""

# KEYS: lock, lease. ARGV: ticket, lease ms, holder token. Returns 1 (yours, lease renewed), 0 (wait; lease
# renewed) or -1 (the ticket expired and was skipped: take a new one). Tickets ahead of ours
# whose lease expired (a crashed replica) are skipped.
_ACQUIRE = """
local function str(n) return string.format('%d', n) end
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
local ticket = tonumber(ARGV[1])
local serving = tonumber(redis.call('HGET', KEYS[1], 'serving') or '0')
if serving == 0 then
  -- the lock vanished (expired, or Redis lost its data): restart the queue from this ticket
  serving = ticket
  if tonumber(redis.call('HGET', KEYS[1], 'next') or '0') < ticket then redis.call('HSET', KEYS[1], 'next', ARGV[1]) end
end
while serving < ticket do
  local lease = tonumber(redis.call('ZSCORE', KEYS[2], str(serving)) or '0')
  if lease > now_ms then break end
  redis.call('ZREM', KEYS[2], str(serving))
  redis.call('HDEL', KEYS[1], 'tok:' .. str(serving))
  serving = serving + 1
end
redis.call('HSET', KEYS[1], 'serving', str(serving))
redis.call('PEXPIRE', KEYS[1], 10 * tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[2], 10 * tonumber(ARGV[2]))
if serving > ticket then return -1 end
redis.call('ZADD', KEYS[2], now_ms + tonumber(ARGV[2]), ARGV[1])
redis.call('HSETNX', KEYS[1], 'tok:' .. ARGV[1], ARGV[3])  -- the hash may have vanished meanwhile
if serving == ticket then return 1 end
return 0
"""

# KEYS: lock, lease. ARGV: ticket, holder token. Frees the lock (or withdraws a waiting ticket),
# only for the holder that owns the ticket: a stale holder whose ticket was skipped can release
# nobody else's. The counter is never deleted (see _ISSUE); idle keys expire.
_RELEASE = """
local ticket = tonumber(ARGV[1])
if redis.call('HGET', KEYS[1], 'tok:' .. ARGV[1]) ~= ARGV[2] then return -1 end
redis.call('HDEL', KEYS[1], 'tok:' .. ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local serving = tonumber(redis.call('HGET', KEYS[1], 'serving') or '0')
if serving == ticket then
  serving = ticket + 1
  redis.call('HSET', KEYS[1], 'serving', string.format('%d', serving))
end
return serving
"""

# KEYS: lock, lease. ARGV: ticket, lease ms, holder token. 1 if the ticket still holds the lock
# (lease renewed).
_RENEW = """
if tonumber(redis.call('HGET', KEYS[1], 'serving') or '0') ~= tonumber(ARGV[1]) then return 0 end
if redis.call('HGET', KEYS[1], 'tok:' .. ARGV[1]) ~= ARGV[3] then return 0 end
local now = redis.call('TIME')
redis.call('ZADD', KEYS[2], now[1] * 1000 + math.floor(now[2] / 1000) + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], 10 * tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[2], 10 * tonumber(ARGV[2]))
return 1
"""


class RedisTicketLockStore(LockStore):
    """A first-come-first-served lock per conversation, atomic across processes.

    A holder keeps its lease alive with a heartbeat, so a long turn keeps the lock, while the
    tickets of a crashed process expire after `lease_s` and the queue moves on. Waiters poll
    with a short backoff (`min_wait_s` .. `max_wait_s`), not once a second.
    """

    def __init__(self, endpoint_config: EndpointConfig) -> None:
        super().__init__()
        options = endpoint_config.kwargs
        self.prefix = _prefix(options.get("key_prefix"))
        self.lease_ms = int(float(options.get("lease_s", 10)) * 1000)
        self.min_wait_s = float(options.get("min_wait_s", 0.002))
        self.max_wait_s = float(options.get("max_wait_s", 0.025))
        self.max_queue_s = float(options.get("max_queue_s", 60))
        self._redis = ResilientRedis(endpoint_config.url or DEFAULT_URL)

    def _keys(self, conversation_id: Text) -> List[str]:
        return [f"{self.prefix}:lock:{{{conversation_id}}}", f"{self.prefix}:lease:{{{conversation_id}}}"]

    @asynccontextmanager
    async def lock(self, conversation_id: Text, lock_lifetime: float = 0,
                   wait_time_in_seconds: float = 0) -> AsyncIterator[TicketLock]:
        """Holds the conversation's lock for the duration of the block.

        Rasa's arguments are accepted for compatibility; the lease and polling come from the
        endpoint configuration. Raises `LockError` if the lock cannot be had within `max_queue_s`.
        """
        client = self._redis
        keys = self._keys(conversation_id)
        token = secrets.token_hex(16)  # who holds the ticket: checked on every release and renewal
        ticket = await self._acquire(client, keys, conversation_id, token)
        heartbeat = asyncio.create_task(self._heartbeat(client, keys, ticket, conversation_id, token))
        try:
            yield TicketLock(conversation_id)  # Rasa ignores it; the ticket lives in Redis
        finally:
            heartbeat.cancel()
            try:
                if int(await client.eval(_RELEASE, 2, *keys, ticket, token)) < 0:
                    logger.warning("conversation %s: lock ticket %s had already been skipped", conversation_id, ticket)
            except Exception:  # the lease expires on its own; waiters then skip the ticket
                logger.exception("could not release the lock of conversation %s", conversation_id)

    async def _acquire(self, client: ResilientRedis, keys: List[str], conversation_id: Text, token: str) -> int:
        deadline = time.monotonic() + self.max_queue_s
        try:
            ticket = int(await client.eval(_ISSUE, 2, *keys, self.lease_ms, token))
            wait = self.min_wait_s
            while True:
                state = int(await client.eval(_ACQUIRE, 2, *keys, ticket, self.lease_ms, token))
                if state == 1:
                    return ticket
                if state == -1:
                    logger.warning("lock ticket %s of conversation %s expired; queueing again", ticket, conversation_id)
                    ticket = int(await client.eval(_ISSUE, 2, *keys, self.lease_ms, token))
                if time.monotonic() > deadline:
                    await client.eval(_RELEASE, 2, *keys, ticket, token)
                    raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}'.")
                await asyncio.sleep(wait)
                wait = min(wait * 2, self.max_wait_s)
        except redis.RedisError as error:
            raise LockError(f"Lock store unavailable for conversation_id '{conversation_id}': {error}") from error

    async def _heartbeat(self, client: ResilientRedis, keys: List[str], ticket: int, conversation_id: Text,
                         token: str) -> None:
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            try:
                if not await client.eval(_RENEW, 2, *keys, ticket, self.lease_ms, token):
                    logger.error("conversation %s: lock ticket %s was lost; the tracker store's fencing "
                                 "will refuse a conflicting save", conversation_id, ticket)
                    return
            except redis.RedisError:
                logger.warning("could not renew the lock of conversation %s", conversation_id, exc_info=True)

    # Rasa only calls `lock()`. The ticket-by-ticket interface of the base class is not supported.
    def get_lock(self, conversation_id: Text) -> Optional[TicketLock]:
        raise NotImplementedError("RedisTicketLockStore is used through lock() only")

    def delete_lock(self, conversation_id: Text) -> None:
        raise NotImplementedError("RedisTicketLockStore is used through lock() only")

    def save_lock(self, lock: TicketLock) -> None:
        raise NotImplementedError("RedisTicketLockStore is used through lock() only")
