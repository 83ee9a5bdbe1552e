"""Tickets and the handoff queue in Redis. The queue is ordered by priority, then by waiting time.

Every change to a ticket is one Lua script on the Redis server: create, claim, release,
transfer, note, resolve, rate and the SLA notice. A script checks its preconditions (status,
assignee, optionally the version the caller last saw), changes the ticket, the queue and the
indexes together, adds 1 to the ticket's `version`, and publishes a small event on
`<prefix>events` (pub/sub) for the console. Nothing is read, changed in Python and written back,
so two writers can never undo each other.

Layout (all under the prefix):
  ticket:<id>         hash: `doc` (JSON of the fields that never change: sender, category,
                      priority, channel, summary, times, customer, order, evidence), `id`,
                      `sender_id`, `score` (the queue score), `status`, `assignee`, `claimed_at`,
                      `resolved_at`, `sla_notified` (0/1), `rating`, `survey_resolved` (0/1),
                      `survey_comment`, `callback` (the number left for a callback), `version`
  notes:<id>          list of note JSON, appended by RPUSH
  queue               sorted set of waiting ticket ids
  assigned:<agent>    set of the tickets an agent holds (claimed)
  open:<sender>       the conversation's open ticket; last-resolved:<sender>; seq; all (list)
Tickets written by the earlier layout (one JSON string) are converted when first touched.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import redis.asyncio as aioredis

from bot.handoff.triggers import PRIORITY_ORDER, rules
from bot.orders.models import SHANGHAI
from bot.redis_url import async_redis

PREFIX = "xb:handoff:"
WAITING, CLAIMED, RESOLVED = "waiting", "claimed", "resolved"
CREATE_ATTEMPTS = 5

# Shared head of every transition on an existing ticket.
# KEYS[1] ticket hash, KEYS[2] its notes; ARGV[1] expected version or '', ARGV[2] event channel.
# Replies: {'ok', hash, notes} | {'missing'} | {'legacy'} | {'stale', version} | {'refused', why}.
_HEAD = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return {'missing'} end
if kind ~= 'hash' then return {'legacy'} end
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= version then return {'stale', tostring(version)} end
local id = redis.call('HGET', KEYS[1], 'id')
local status = redis.call('HGET', KEYS[1], 'status')
local assignee = redis.call('HGET', KEYS[1], 'assignee')
local function commit(op)
  local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
  local event = {id = id, op = op, version = v, status = redis.call('HGET', KEYS[1], 'status')}
  local who = redis.call('HGET', KEYS[1], 'assignee')
  if who then event['assignee'] = who end
  redis.call('PUBLISH', ARGV[2], cjson.encode(event))
  return {'ok', redis.call('HGETALL', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, -1)}
end
local function owned_by(agent)
  if status ~= 'claimed' then return false end
  return assignee == agent
end
"""

# KEYS[3] queue, KEYS[4] assigned:<agent>; ARGV[3] agent, ARGV[4] now
_CLAIM = _HEAD + """
if status ~= 'waiting' then return {'refused', status} end
redis.call('HSET', KEYS[1], 'status', 'claimed', 'assignee', ARGV[3])
redis.call('HSETNX', KEYS[1], 'claimed_at', ARGV[4])
redis.call('ZREM', KEYS[3], id)
redis.call('SADD', KEYS[4], id)
return commit('claim')
"""

# KEYS[3] queue, KEYS[4] assigned:<agent>; ARGV[3] agent
_RELEASE = _HEAD + """
if not owned_by(ARGV[3]) then return {'refused', status} end
redis.call('HSET', KEYS[1], 'status', 'waiting')
redis.call('HDEL', KEYS[1], 'assignee')
redis.call('ZADD', KEYS[3], redis.call('HGET', KEYS[1], 'score'), id)
redis.call('SREM', KEYS[4], id)
return commit('release')
"""

# KEYS[3] assigned:<agent>, KEYS[4] assigned:<to>; ARGV[3] agent, ARGV[4] to
_TRANSFER = _HEAD + """
if not owned_by(ARGV[3]) then return {'refused', status} end
redis.call('HSET', KEYS[1], 'assignee', ARGV[4])
redis.call('SREM', KEYS[3], id)
redis.call('SADD', KEYS[4], id)
return commit('transfer')
"""

# ARGV[3] the note (JSON)
_NOTE = _HEAD + """
redis.call('RPUSH', KEYS[2], ARGV[3])
return commit('note')
"""

# KEYS[3] queue, KEYS[4] assigned:<agent>, KEYS[5] open:<sender>, KEYS[6] last-resolved:<sender>
# ARGV[3] agent, ARGV[4] now, ARGV[5] sender
_RESOLVE = _HEAD + """
if not owned_by(ARGV[3]) then return {'refused', status} end
if redis.call('HGET', KEYS[1], 'sender_id') ~= ARGV[5] then return {'refused', 'sender'} end
redis.call('HSET', KEYS[1], 'status', 'resolved', 'resolved_at', ARGV[4])
redis.call('ZREM', KEYS[3], id)
redis.call('SREM', KEYS[4], id)
if redis.call('GET', KEYS[5]) == id then redis.call('DEL', KEYS[5]) end
redis.call('SET', KEYS[6], id)
return commit('resolve')
"""

# ARGV[3] rating ('' keeps it), ARGV[4] resolved ('1'/'0', '' keeps it), ARGV[5] comment ('' keeps it)
_RATE = _HEAD + """
if status ~= 'resolved' then return {'refused', status} end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'rating', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'survey_resolved', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'survey_comment', ARGV[5]) end
return commit('rate')
"""
# The number the shopper left for a callback, on a ticket not yet resolved. ARGV[3] the number
_CALLBACK = _HEAD + """
if status == 'resolved' then return {'refused', status} end
redis.call('HSET', KEYS[1], 'callback', ARGV[3])
return commit('callback')
"""

# The SLA notice's compare-and-set: only a waiting ticket not yet noticed. ARGV[3] '1' to set, '0' to undo.
_SLA = _HEAD + """
if ARGV[3] == '1' then
  if status ~= 'waiting' or redis.call('HGET', KEYS[1], 'sla_notified') == '1' then return {'refused', status} end
else
  if redis.call('HGET', KEYS[1], 'sla_notified') ~= '1' then return {'refused', 'not noticed'} end
end
redis.call('HSET', KEYS[1], 'sla_notified', ARGV[3])
return commit(ARGV[3] == '1' and 'sla_notice' or 'sla_retry')
"""

# KEYS[1] new ticket, KEYS[2] its notes, KEYS[3] open:<sender>, KEYS[4] queue, KEYS[5] all,
# KEYS[6] the ticket open:<sender> named when the caller looked (or KEYS[1]).
# ARGV[1] '' , ARGV[2] channel, ARGV[3] the id open:<sender> held ('' for none), ARGV[4] new id,
# ARGV[5] score, ARGV[6..] hash fields and values.
# Replies {'ok', hash, notes} | {'retry'} (open:<sender> changed) | {'exists'} (a live ticket is open).
_CREATE = """
local open = redis.call('GET', KEYS[3]) or ''
if open ~= ARGV[3] then return {'retry'} end
if open ~= '' then
  local kind = redis.call('TYPE', KEYS[6])['ok']
  if kind == 'string' then return {'exists'} end
  if kind == 'hash' and redis.call('HGET', KEYS[6], 'status') ~= 'resolved' then return {'exists'} end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('ticket ' .. ARGV[4] .. ' exists') end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('SET', KEYS[3], ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[4])
redis.call('RPUSH', KEYS[5], ARGV[4])
local event = {id = ARGV[4], op = 'create', version = 1, status = 'waiting'}
redis.call('PUBLISH', ARGV[2], cjson.encode(event))
return {'ok', redis.call('HGETALL', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, -1)}
"""

# Reads tickets, each in one piece. KEYS: ticket, notes, ticket, notes, ...
# Per ticket: {'h', hash, notes} | {'s', legacy json} | {'n'}
_FETCH = """
local out = {}
for i = 1, #KEYS, 2 do
  local kind = redis.call('TYPE', KEYS[i])['ok']
  if kind == 'hash' then
    out[#out + 1] = {'h', redis.call('HGETALL', KEYS[i]), redis.call('LRANGE', KEYS[i + 1], 0, -1)}
  elseif kind == 'string' then
    out[#out + 1] = {'s', redis.call('GET', KEYS[i])}
  else
    out[#out + 1] = {'n'}
  end
end
return out
"""

# Drops open:<sender> when it names a ticket that does not exist or is resolved.
# KEYS[1] open:<sender>, KEYS[2] the ticket; ARGV[1] the id it held
_CLEAR_OPEN = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local kind = redis.call('TYPE', KEYS[2])['ok']
if kind == 'string' then return 0 end
if kind == 'hash' and redis.call('HGET', KEYS[2], 'status') ~= 'resolved' then return 0 end
return redis.call('DEL', KEYS[1])
"""

# Converts a ticket of the earlier layout, if it is still exactly what was read.
# KEYS[1] ticket, KEYS[2] notes, KEYS[3] queue, KEYS[4] assigned:<assignee> (or KEYS[1]);
# ARGV[1] the JSON read, ARGV[2] note count, ARGV[3..] notes then hash fields and values.
_MIGRATE = """
if redis.call('TYPE', KEYS[1])['ok'] ~= 'string' or redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
local n = tonumber(ARGV[2])
if n > 0 then redis.call('RPUSH', KEYS[2], unpack(ARGV, 3, 2 + n)) end
redis.call('HSET', KEYS[1], unpack(ARGV, 3 + n))
local status = redis.call('HGET', KEYS[1], 'status')
local id = redis.call('HGET', KEYS[1], 'id')
if status == 'waiting' then redis.call('ZADD', KEYS[3], redis.call('HGET', KEYS[1], 'score'), id)
else redis.call('ZREM', KEYS[3], id) end
if status == 'claimed' and KEYS[4] ~= KEYS[1] then redis.call('SADD', KEYS[4], id) end
return 1
"""


class TicketError(Exception):
    """The ticket does not exist, or the agent does not own it."""


class StaleTicket(TicketError):
    """The ticket changed since the version the caller gave."""


@dataclass(frozen=True)
class Ticket:
    id: str
    sender_id: str  # the Rasa conversation
    category: str
    priority: str
    channel: str
    summary: str
    created_at: str
    sla_due: str
    customer: Optional[str] = None
    order_id: Optional[str] = None
    status: str = WAITING
    assignee: Optional[str] = None
    claimed_at: Optional[str] = None
    resolved_at: Optional[str] = None
    sla_notified: bool = False
    rating: Optional[int] = None
    survey_resolved: Optional[bool] = None  # the shopper's 「问题是否解决」 after the handoff
    survey_comment: Optional[str] = None
    callback: Optional[str] = None  # the phone number the shopper left for a callback
    notes: List[Dict[str, str]] = field(default_factory=list)
    evidence: Dict[str, Any] = field(default_factory=dict)
    version: int = 0  # +1 on every transition, create included

    @property
    def category_label(self) -> str:
        return rules()["categories"].get(self.category, self.category)


# The fields kept in `doc`: set at creation, never changed.
_DOC_FIELDS = ("id", "sender_id", "category", "priority", "channel", "summary", "created_at", "sla_due",
               "customer", "order_id", "evidence")


def now() -> dt.datetime:
    return dt.datetime.now(SHANGHAI)


def _queue_score(priority: str, created: dt.datetime) -> float:
    return PRIORITY_ORDER[priority] * 1e11 + created.timestamp()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: Sequence[Any]) -> Dict[str, str]:
    items = [_text(v) for v in flat]
    return dict(zip(items[0::2], items[1::2]))


def _ticket(flat_hash: Sequence[Any], notes: Sequence[Any]) -> Ticket:
    stored = _pairs(flat_hash)
    doc = json.loads(stored["doc"])
    return Ticket(
        **{k: v for k, v in doc.items() if k in _DOC_FIELDS},
        status=stored.get("status", WAITING), assignee=stored.get("assignee"),
        claimed_at=stored.get("claimed_at"), resolved_at=stored.get("resolved_at"),
        sla_notified=stored.get("sla_notified") == "1",
        rating=int(stored["rating"]) if stored.get("rating") else None,
        survey_resolved={"1": True, "0": False}.get(stored.get("survey_resolved") or ""),
        survey_comment=stored.get("survey_comment"), callback=stored.get("callback"),
        notes=[json.loads(_text(n)) for n in notes], version=int(stored.get("version", 0)),
    )


def _hash_fields(values: Dict[str, Any], score: float, version: int) -> List[str]:
    """The hash of a ticket given as field, value, field, value ... (None fields left out)."""
    doc = {k: values.get(k) for k in _DOC_FIELDS}
    doc["evidence"] = doc["evidence"] or {}
    stored: Dict[str, Any] = {
        "doc": json.dumps(doc, ensure_ascii=False), "id": values["id"], "sender_id": values["sender_id"],
        "score": repr(score), "status": values.get("status") or WAITING, "assignee": values.get("assignee"),
        "claimed_at": values.get("claimed_at"), "resolved_at": values.get("resolved_at"),
        "sla_notified": "1" if values.get("sla_notified") else "0", "rating": values.get("rating"),
        "callback": values.get("callback"), "survey_comment": values.get("survey_comment"),
        "survey_resolved": None if values.get("survey_resolved") is None else "1" if values["survey_resolved"] else "0",
        "version": str(version),
    }
    return [str(x) for k, v in stored.items() if v is not None for x in (k, v)]


class TicketStore:
    def __init__(self, client: aioredis.Redis, prefix: str = PREFIX) -> None:
        self._redis = client
        self._prefix = prefix
        self._scripts = {name: client.register_script(source) for name, source in {
            "claim": _CLAIM, "release": _RELEASE, "transfer": _TRANSFER, "note": _NOTE, "resolve": _RESOLVE,
            "rate": _RATE, "callback": _CALLBACK, "sla": _SLA, "create": _CREATE, "fetch": _FETCH, "clear_open": _CLEAR_OPEN,
            "migrate": _MIGRATE}.items()}

    @classmethod
    def from_url(cls, url: str, prefix: str = PREFIX) -> "TicketStore":
        return cls(async_redis(url, socket_timeout=3, socket_connect_timeout=3), prefix)

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    @property
    def events_channel(self) -> str:
        """The pub/sub channel every transition publishes {id, op, version, status, assignee} on."""
        return self._key("events")

    # -- reading --------------------------------------------------------------------------
    async def get(self, ticket_id: str) -> Optional[Ticket]:
        return (await self.get_many([ticket_id]))[0]

    async def get_many(self, ticket_ids: Sequence[str], convert: bool = True) -> List[Optional[Ticket]]:
        """The tickets, each read in one piece, with one round trip (None for a missing one)."""
        if not ticket_ids:
            return []
        keys = [k for i in ticket_ids for k in (self._key("ticket", i), self._key("notes", i))]
        found: List[Optional[Ticket]] = []
        legacy = False
        for reply in await self._scripts["fetch"](keys=keys):
            kind = _text(reply[0])
            if kind == "s" and convert:
                legacy = True
                await self._migrate(_text(reply[1]))
            found.append(_ticket(reply[1], reply[2]) if kind == "h" else None)
        return await self.get_many(ticket_ids, convert=False) if legacy else found

    async def open_ticket_for(self, sender_id: str) -> Optional[Ticket]:
        """The conversation's open ticket. A pointer to a ticket that does not exist (or is already
        resolved) counts as none, and is removed."""
        held = await self._redis.get(self._key("open", sender_id))
        if not held:
            return None
        ticket_id = _text(held)
        ticket = await self.get(ticket_id)
        if ticket is not None and ticket.status != RESOLVED:
            return ticket
        await self._scripts["clear_open"](keys=[self._key("open", sender_id), self._key("ticket", ticket_id)],
                                          args=[ticket_id])
        return None

    async def queue(self) -> List[Ticket]:
        """Waiting tickets: urgent first, then the longest waiting."""
        ids = [_text(i) for i in await self._redis.zrange(self._key("queue"), 0, -1)]
        return [t for t in await self.get_many(ids) if t is not None]

    async def assigned_to(self, agent: str) -> List[Ticket]:
        """The tickets `agent` holds, oldest first."""
        ids = [_text(i) for i in await self._redis.smembers(self._key("assigned", agent))]
        found = [t for t in await self.get_many(ids) if t is not None and t.status == CLAIMED and t.assignee == agent]
        return sorted(found, key=lambda t: t.created_at)

    async def position(self, ticket_id: str) -> Optional[int]:
        rank = await self._redis.zrank(self._key("queue"), ticket_id)
        return None if rank is None else rank + 1

    async def all_tickets(self) -> List[Ticket]:
        ids = [_text(i) for i in await self._redis.lrange(self._key("all"), 0, -1)]
        return [t for t in await self.get_many(ids) if t is not None]

    # -- transitions ----------------------------------------------------------------------
    async def _transition(self, script: str, ticket_id: str, keys: Iterable[str] = (), args: Iterable[Any] = (),
                          expected_version: Optional[int] = None) -> Tuple[str, Any]:
        """Runs a transition script: ('ok', Ticket), or (why not, detail)."""
        for _ in range(2):
            reply = await self._scripts[script](
                keys=[self._key("ticket", ticket_id), self._key("notes", ticket_id), *keys],
                args=["" if expected_version is None else str(expected_version), self.events_channel, *args])
            outcome = _text(reply[0])
            if outcome == "legacy":
                await self._migrate_id(ticket_id)
                continue
            if outcome == "ok":
                return outcome, _ticket(reply[1], reply[2])
            return outcome, _text(reply[1]) if len(reply) > 1 else None
        raise TicketError(f"ticket {ticket_id} could not be converted")

    @staticmethod
    def _refused(outcome: str, detail: Any, message: str) -> TicketError:
        if outcome == "stale":
            return StaleTicket(f"{message}: it changed (now version {detail})")
        return TicketError(message)

    async def create(self, sender_id: str, category: str, priority: str, channel: str, summary: str,
                     customer: Optional[str] = None, order_id: Optional[str] = None,
                     evidence: Optional[Dict[str, Any]] = None) -> tuple:
        """Opens a ticket, or returns the conversation's open one. Returns (ticket, created).
        The ticket, `open:<sender>`, the queue and the list of all tickets are written by one
        script: all of them or none."""
        open_key = self._key("open", sender_id)
        for _ in range(CREATE_ATTEMPTS):
            held = await self._redis.get(open_key)
            held_id = _text(held) if held else ""
            if held_id:
                existing = await self.get(held_id)
                if existing is not None and existing.status != RESOLVED:
                    return existing, False
                # else: a pointer to nothing (or to a closed ticket): the script replaces it
            created = now()
            seq = await self._redis.incr(self._key("seq"))
            ticket_id = f"T{created:%Y%m%d}{seq:05d}"
            score = _queue_score(priority, created)
            values = dict(
                id=ticket_id, sender_id=sender_id, category=category, priority=priority, channel=channel,
                summary=summary, created_at=created.isoformat(),
                sla_due=(created + dt.timedelta(minutes=rules()["sla_minutes"][priority])).isoformat(),
                customer=customer, order_id=order_id, evidence=evidence or {},
            )
            reply = await self._scripts["create"](
                keys=[self._key("ticket", ticket_id), self._key("notes", ticket_id), open_key, self._key("queue"),
                      self._key("all"), self._key("ticket", held_id) if held_id else self._key("ticket", ticket_id)],
                args=["", self.events_channel, held_id, ticket_id, repr(score), *_hash_fields(values, score, 1)])
            if _text(reply[0]) == "ok":
                return _ticket(reply[1], reply[2]), True
            # 'retry' or 'exists': a concurrent escalation won; read what it opened
        existing = await self.open_ticket_for(sender_id)
        if existing is None:
            raise TicketError(f"could not open a ticket for {sender_id}")
        return existing, False

    async def claim(self, ticket_id: str, agent: str, expected_version: Optional[int] = None) -> bool:
        """True for exactly one agent, however many try at the same moment."""
        outcome, _ = await self._transition(
            "claim", ticket_id, [self._key("queue"), self._key("assigned", agent)], [agent, now().isoformat()],
            expected_version)
        return outcome == "ok"

    async def release(self, ticket_id: str, agent: str, expected_version: Optional[int] = None) -> Ticket:
        outcome, result = await self._transition(
            "release", ticket_id, [self._key("queue"), self._key("assigned", agent)], [agent], expected_version)
        if outcome != "ok":
            raise self._refused(outcome, result, f"{agent} does not own {ticket_id}")
        return result

    async def transfer(self, ticket_id: str, agent: str, to_agent: str, expected_version: Optional[int] = None) -> Ticket:
        outcome, result = await self._transition(
            "transfer", ticket_id, [self._key("assigned", agent), self._key("assigned", to_agent)], [agent, to_agent],
            expected_version)
        if outcome != "ok":
            raise self._refused(outcome, result, f"{agent} does not own {ticket_id}")
        return result

    async def add_note(self, ticket_id: str, agent: str, text: str, expected_version: Optional[int] = None) -> Ticket:
        note = {"agent": agent, "text": text, "at": now().isoformat()}
        outcome, result = await self._transition(
            "note", ticket_id, args=[json.dumps(note, ensure_ascii=False)], expected_version=expected_version)
        if outcome != "ok":
            raise self._refused(outcome, result, f"no ticket {ticket_id}")
        return result

    async def resolve(self, ticket_id: str, agent: str, expected_version: Optional[int] = None) -> Ticket:
        ticket = await self.get(ticket_id)  # for its sender, which never changes; the script checks it
        if ticket is None:
            raise TicketError(f"no ticket {ticket_id}")
        sender = ticket.sender_id
        outcome, result = await self._transition(
            "resolve", ticket_id, [self._key("queue"), self._key("assigned", agent), self._key("open", sender),
                                   self._key("last-resolved", sender)],
            [agent, now().isoformat(), sender], expected_version)
        if outcome != "ok":
            raise self._refused(outcome, result, f"{agent} does not own {ticket_id}")
        return result

    async def rate(self, sender_id: str, rating: Optional[int], resolved: Optional[bool] = None,
                   comment: Optional[str] = None) -> Optional[Ticket]:
        """Rates the conversation's last resolved ticket (None when there is none): the 1-5
        rating, whether the problem was solved and a comment, each only when given."""
        ticket_id = await self._redis.get(self._key("last-resolved", sender_id))
        if not ticket_id:
            return None
        args = ["" if rating is None else str(int(rating)), "" if resolved is None else "1" if resolved else "0",
                comment or ""]
        outcome, result = await self._transition("rate", _text(ticket_id), args=args)
        return result if outcome == "ok" else None

    async def set_callback(self, ticket_id: str, number: str) -> Optional[Ticket]:
        """Keeps the number the shopper left for a callback on their open ticket (None when the
        ticket is gone or resolved)."""
        outcome, result = await self._transition("callback", ticket_id, args=[number])
        return result if outcome == "ok" else None

    async def mark_sla_notified(self, ticket_id: str) -> Optional[Ticket]:
        """Compare-and-set: marks a waiting, not yet noticed ticket, and returns it. None when the
        ticket was already noticed (by another replica), claimed meanwhile, or is gone: then the
        caller must not tell the shopper."""
        outcome, result = await self._transition("sla", ticket_id, args=["1"])
        return result if outcome == "ok" else None

    async def unmark_sla_notified(self, ticket_id: str) -> Optional[Ticket]:
        """Undoes a successful mark whose notice could not be sent, so that a replica tries again."""
        outcome, result = await self._transition("sla", ticket_id, args=["0"])
        return result if outcome == "ok" else None

    async def overdue(self, at: Optional[dt.datetime] = None) -> List[Ticket]:
        at = at or now()
        return [t for t in await self.queue() if not t.sla_notified and dt.datetime.fromisoformat(t.sla_due) <= at]

    # -- the earlier layout ---------------------------------------------------------------
    async def _migrate_id(self, ticket_id: str) -> None:
        raw = await self._redis.get(self._key("ticket", ticket_id))  # WRONGTYPE cannot happen: it was a string
        if raw is not None:
            await self._migrate(_text(raw))

    async def _migrate(self, raw: str) -> None:
        values = json.loads(raw)
        notes = values.get("notes") or []
        notes = notes if isinstance(notes, list) else []  # Lua's cjson wrote an empty list as {}
        evidence = values.get("evidence")
        values["evidence"] = evidence if isinstance(evidence, dict) else {}
        score = _queue_score(values["priority"], dt.datetime.fromisoformat(values["created_at"]))
        ticket_id, assignee = values["id"], values.get("assignee")
        ticket_key = self._key("ticket", ticket_id)
        await self._scripts["migrate"](
            keys=[ticket_key, self._key("notes", ticket_id), self._key("queue"),
                  self._key("assigned", assignee) if assignee else ticket_key],
            args=[raw, len(notes), *[json.dumps(n, ensure_ascii=False) for n in notes],
                  *_hash_fields(values, score, int(values.get("version") or 0))])

    async def upgrade(self) -> int:
        """Converts every ticket of the earlier layout (the console does this at start, so that
        claimed tickets appear under their agent). Returns how many tickets there are."""
        return len(await self.all_tickets())

    # -- figures --------------------------------------------------------------------------
    async def metrics(self, conversations: int) -> Dict[str, Any]:
        tickets = await self.all_tickets()
        waits = [
            (dt.datetime.fromisoformat(t.claimed_at) - dt.datetime.fromisoformat(t.created_at)).total_seconds()
            for t in tickets if t.claimed_at
        ]
        ratings = [t.rating for t in tickets if t.rating]
        escalated = len({t.sender_id for t in tickets})
        return {
            "conversations": conversations,
            "escalations": len(tickets),
            "escalation_rate": escalated / conversations if conversations else 0.0,
            "automation_rate": 1 - escalated / conversations if conversations else 0.0,
            "median_wait_s": statistics.median(waits) if waits else None,
            "csat": statistics.mean(ratings) if ratings else None,
            "ratings": len(ratings),
        }

    async def close(self) -> None:
        await self._redis.aclose() if hasattr(self._redis, "aclose") else await self._redis.close()


MINUTES_PER_TICKET_AHEAD = 3  # the wait a shopper is told: this many minutes for each place in the queue


def wait_minutes(position: int) -> int:
    """The estimated wait at `position` in the queue (1 = next), as the bot and the SLA notice say it."""
    return max(1, position * MINUTES_PER_TICKET_AHEAD)


def queued_payload(ticket: "Ticket", position: int, wait: int) -> Dict[str, Any]:
    """Contract (A) of issue 16: the widget's 排队中（第N位） status bar, sent next to the queue text
    by the bot (actions/handoff.py) and by the console's SLA notice."""
    return {"type": "handoff_status", "state": "queued", "ticket_id": ticket.id, "position": position,
            "eta_min": wait}
