"""Risk alerts in Redis: one live alert per detector key, and what staff do with it.

Like the ticket store (bot/handoff/tickets.py), every change is one Lua script on the Redis
server: record a finding, acknowledge, assign, resolve, note, confirm a safety alert, record the
shopper warnings. A script checks its precondition, changes the alert, its lists and the indexes
together, adds 1 to `version`, appends to the history and publishes {"id", "op", "version",
"severity"} on `channel`, so two replicas (or two supervisors) never undo each other, and two
workers recording the same key at once still leave exactly one live alert.

Layout (all under the prefix, "xb:risk:" by default):
  alert:<id>             hash: the scalar fields, `series` and `warning` as JSON, `created_ts`
  alert-samples:<id>     list of sample JSON, newest first, at most SAMPLES
  alert-notes:<id>       list of note JSON
  alert-history:<id>     list of {"op", "by", "at"} JSON, oldest first, at most HISTORY
  alert-live:<key>       the id of the key's live (not resolved) alert
  alert-seq              the counter behind alert ids (R<yyyymmdd><seq>)
  alerts                 sorted set of every alert id, by creation time
  alert-idx:<field>:<v>  the same, per merchant, category, severity and status; alert-idx:live
                         holds the alerts not resolved (status "live" in `list`)
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

import redis.asyncio as aioredis

from bot.orders.models import SHANGHAI
from bot.risk.events import SAFETY, RiskEvent

if TYPE_CHECKING:  # the detector is pure and imported by the worker; here only its Finding's shape
    from bot.risk.detector import Finding

PREFIX = "xb:risk:"
OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
STATUSES = (OPEN, ACKNOWLEDGED, RESOLVED)
LIVE = "live"  # a `list` filter: open or acknowledged
# Severity only ever goes up: a second safety report on a SKU makes an urgent alert critical.
SEVERITY_RANK = {"normal": 1, "high": 2, "urgent": 3, "critical": 4}
SAMPLES = 20
HISTORY = 1000
FILTERS = ("merchant", "category", "severity", "status")

# Helpers shared by every script. ARGV[1] the prefix, ARGV[2] the pub/sub channel.
_LIB = """
local P = ARGV[1]
local function idx(name, value) return P .. 'alert-idx:' .. name .. ':' .. value end
local function fetch(id)
  local h = P .. 'alert:' .. id
  return {'ok', redis.call('HGETALL', h), redis.call('LRANGE', P .. 'alert-samples:' .. id, 0, -1),
          redis.call('LRANGE', P .. 'alert-notes:' .. id, 0, -1),
          redis.call('LRANGE', P .. 'alert-history:' .. id, 0, -1)}
end
local function commit(id, op, by, at)
  local h = P .. 'alert:' .. id
  local v = redis.call('HINCRBY', h, 'version', 1)
  redis.call('HSET', h, 'updated_at', at)
  local hist = P .. 'alert-history:' .. id
  redis.call('RPUSH', hist, cjson.encode({op = op, by = by, at = at}))
  redis.call('LTRIM', hist, -tonumber(ARGV[3]), -1)
  redis.call('PUBLISH', ARGV[2], cjson.encode({id = id, op = op, version = v,
                                               severity = redis.call('HGET', h, 'severity')}))
  return fetch(id)
end
local function move(name, old, new, id, score)
  if old == new then return end
  if old then redis.call('ZREM', idx(name, old), id) end
  redis.call('ZADD', idx(name, new), score, id)
end
"""

# ARGV[3] history cap, ARGV[4] the finding key, ARGV[5] now (ISO), ARGV[6] now (unix s),
# ARGV[7] yyyymmdd, ARGV[8] fields JSON (finding and dimensions), ARGV[9] sample JSON,
# ARGV[10] series JSON, ARGV[11] samples cap, ARGV[12] severity ranks JSON.
# Reply: {'ok', hash, samples, notes, history, 'created' | 'updated'}.
_RECORD = _LIB + """
local key, at, ts = ARGV[4], ARGV[5], tonumber(ARGV[6])
local f = cjson.decode(ARGV[8])
local rank = cjson.decode(ARGV[12])
local live_key = P .. 'alert-live:' .. key
local id = redis.call('GET', live_key)
if id and redis.call('HGET', P .. 'alert:' .. id, 'status') ~= 'open'
      and redis.call('HGET', P .. 'alert:' .. id, 'status') ~= 'acknowledged' then
  id = false
end
local function sample(aid)
  local s = P .. 'alert-samples:' .. aid
  for _, seen in ipairs(redis.call('LRANGE', s, 0, -1)) do
    if seen == ARGV[9] then return end  -- the same event recorded again (a redelivery)
  end
  redis.call('LPUSH', s, ARGV[9])
  redis.call('LTRIM', s, 0, tonumber(ARGV[11]) - 1)
end
local measures = {'observed', f.observed, 'expected', f.expected, 'ratio', f.ratio, 'window_h', f.window_h,
                  'rule', f.rule, 'series', ARGV[10]}
if not id then
  id = 'R' .. ARGV[7] .. string.format('%05d', redis.call('INCR', P .. 'alert-seq'))
  local h = P .. 'alert:' .. id
  redis.call('HSET', h, 'id', id, 'key', key, 'dimension', f.dimension, 'value', f.value, 'kind', f.kind,
             'reason', f.reason, 'severity', f.severity, 'status', 'open', 'created_at', at, 'updated_at', at,
             'created_ts', ARGV[6], 'safety', f.safety, 'version', 0, unpack(measures))
  for _, name in ipairs({'sku', 'merchant', 'category'}) do
    if f[name] and f[name] ~= '' then redis.call('HSET', h, name, f[name]) end
  end
  redis.call('SET', live_key, id)
  redis.call('ZADD', P .. 'alerts', ts, id)
  redis.call('ZADD', P .. 'alert-idx:live', ts, id)
  redis.call('ZADD', idx('severity', f.severity), ts, id)
  redis.call('ZADD', idx('status', 'open'), ts, id)
  if f.merchant and f.merchant ~= '' then redis.call('ZADD', idx('merchant', f.merchant), ts, id) end
  if f.category and f.category ~= '' then redis.call('ZADD', idx('category', f.category), ts, id) end
  sample(id)
  local reply = commit(id, 'create', 'detector', at)
  reply[#reply + 1] = 'created'
  return reply
end
local h = P .. 'alert:' .. id
local old = redis.call('HGET', h, 'severity')
local op = 'update'
redis.call('HSET', h, unpack(measures))
if (rank[f.severity] or 0) > (rank[old] or 0) then
  redis.call('HSET', h, 'severity', f.severity)
  move('severity', old, f.severity, id, tonumber(redis.call('HGET', h, 'created_ts')))
  op = 'escalate'
end
sample(id)
local reply = commit(id, op, 'detector', at)
reply[#reply + 1] = 'updated'
return reply
"""

# Head of a staff transition. ARGV[4] alert id, ARGV[5] who, ARGV[6] now (ISO).
_HEAD = _LIB + """
local id, by, at = ARGV[4], ARGV[5], ARGV[6]
local h = P .. 'alert:' .. id
if redis.call('EXISTS', h) == 0 then return {'missing'} end
local status = redis.call('HGET', h, 'status')
local created = tonumber(redis.call('HGET', h, 'created_ts'))
local function set_status(new)
  move('status', status, new, id, created)
  redis.call('HSET', h, 'status', new)
end
"""

_ACKNOWLEDGE = _HEAD + """
if status ~= 'open' then return {'refused', status} end
set_status('acknowledged')
return commit(id, 'acknowledge', by, at)
"""

# ARGV[7] the assignee
_ASSIGN = _HEAD + """
if status == 'resolved' then return {'refused', status} end
redis.call('HSET', h, 'assignee', ARGV[7])
return commit(id, 'assign', by, at)
"""

# ARGV[7] the note JSON ('' for none)
_RESOLVE = _HEAD + """
if status == 'resolved' then return {'refused', status} end
set_status('resolved')
redis.call('HSET', h, 'resolved_at', at)
redis.call('ZREM', P .. 'alert-idx:live', id)
local live_key = P .. 'alert-live:' .. redis.call('HGET', h, 'key')
if redis.call('GET', live_key) == id then redis.call('DEL', live_key) end
if ARGV[7] ~= '' then redis.call('RPUSH', P .. 'alert-notes:' .. id, ARGV[7]) end
return commit(id, 'resolve', by, at)
"""

# ARGV[7] the note JSON
_NOTE = _HEAD + """
redis.call('RPUSH', P .. 'alert-notes:' .. id, ARGV[7])
return commit(id, 'note', by, at)
"""

# The first confirmation counts; a later one returns the alert unchanged ({'ok', ..., 'already'}).
_CONFIRM = _HEAD + """
if redis.call('HGET', h, 'safety') ~= '1' then return {'refused', 'not a safety alert'} end
if redis.call('HEXISTS', h, 'confirmed_by') == 1 then
  local reply = fetch(id)
  reply[#reply + 1] = 'already'
  return reply
end
if status == 'resolved' then return {'refused', status} end
redis.call('HSET', h, 'confirmed_by', by, 'confirmed_at', at)
return commit(id, 'confirm', by, at)
"""

# ARGV[7] the warning summary JSON
_WARNING = _HEAD + """
redis.call('HSET', h, 'warning', ARGV[7])
return commit(id, 'warn', by, at)
"""

# Removes a resolved alert with its lists and index entries (retention). ARGV[4] alert id.
_DROP = _LIB + """
local id = ARGV[4]
local h = P .. 'alert:' .. id
if redis.call('HGET', h, 'status') ~= 'resolved' then return 0 end
local f = redis.call('HMGET', h, 'severity', 'merchant', 'category', 'key')
redis.call('ZREM', idx('severity', f[1]), id)
redis.call('ZREM', idx('status', 'resolved'), id)
if f[2] then redis.call('ZREM', idx('merchant', f[2]), id) end
if f[3] then redis.call('ZREM', idx('category', f[3]), id) end
redis.call('ZREM', P .. 'alerts', id)
redis.call('ZREM', P .. 'alert-idx:live', id)
if redis.call('GET', P .. 'alert-live:' .. f[4]) == id then redis.call('DEL', P .. 'alert-live:' .. f[4]) end
redis.call('DEL', h, P .. 'alert-samples:' .. id, P .. 'alert-notes:' .. id, P .. 'alert-history:' .. id)
return 1
"""

# Alert ids newest first that are in every index. KEYS: the indexes (the first is walked);
# ARGV[1] limit.
_SELECT = """
local limit = tonumber(ARGV[1])
local out, start, page = {}, 0, 500
while #out < limit do
  local ids = redis.call('ZREVRANGE', KEYS[1], start, start + page - 1)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    local keep = true
    for i = 2, #KEYS do
      if not redis.call('ZSCORE', KEYS[i], id) then keep = false break end
    end
    if keep then
      out[#out + 1] = id
      if #out >= limit then break end
    end
  end
  start = start + page
end
return out
"""

# ARGV[2..] alert ids. Reply: per id {'ok', hash, samples, notes, history} or {'missing'}.
_FETCH = _LIB + """
local out = {}
for i = 4, #ARGV do
  if redis.call('EXISTS', P .. 'alert:' .. ARGV[i]) == 1 then out[#out + 1] = fetch(ARGV[i])
  else out[#out + 1] = {'missing'} end
end
return out
"""


class AlertError(Exception):
    """The alert does not exist, or the change is refused (resolve twice, confirm a non-safety alert)."""


@dataclass
class Alert:
    id: str
    key: str
    dimension: str
    value: str
    kind: str
    reason: str
    severity: str
    status: str
    assignee: Optional[str]
    created_at: str
    updated_at: str
    observed: int
    expected: float
    ratio: float
    window_h: int
    rule: str
    sku: Optional[str] = None
    merchant: Optional[str] = None
    category: Optional[str] = None
    safety: bool = False
    samples: List[dict] = field(default_factory=list)
    series: dict = field(default_factory=dict)
    notes: List[dict] = field(default_factory=list)
    history: List[dict] = field(default_factory=list)
    confirmed_by: Optional[str] = None
    confirmed_at: Optional[str] = None
    warning: Optional[dict] = None
    version: int = 0
    resolved_at: Optional[str] = None


def now() -> dt.datetime:
    return dt.datetime.now(SHANGHAI)


def iso(at: float) -> str:
    """Unix seconds as ISO time in Asia/Shanghai."""
    return dt.datetime.fromtimestamp(at, SHANGHAI).isoformat()


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _alert(reply: Sequence[Any]) -> Alert:
    """An Alert from a script's {'ok', hash, samples, notes, history} reply."""
    items = [_text(v) for v in reply[1]]
    stored = dict(zip(items[0::2], items[1::2]))
    lists = [[json.loads(_text(x)) for x in reply[i]] for i in (2, 3, 4)]
    return Alert(
        id=stored["id"], key=stored["key"], dimension=stored["dimension"], value=stored["value"],
        kind=stored["kind"], reason=stored["reason"], severity=stored["severity"], status=stored["status"],
        assignee=stored.get("assignee"), created_at=stored["created_at"], updated_at=stored["updated_at"],
        observed=int(float(stored.get("observed", 0))), expected=float(stored.get("expected", 0)),
        ratio=float(stored.get("ratio", 0)), window_h=int(float(stored.get("window_h", 0))),
        rule=stored.get("rule", ""), sku=stored.get("sku"), merchant=stored.get("merchant"),
        category=stored.get("category"), safety=stored.get("safety") == "1", samples=lists[0],
        series=json.loads(stored.get("series") or "{}"), notes=lists[1], history=lists[2],
        confirmed_by=stored.get("confirmed_by"), confirmed_at=stored.get("confirmed_at"),
        warning=json.loads(stored["warning"]) if stored.get("warning") else None,
        version=int(stored.get("version", 0)), resolved_at=stored.get("resolved_at"),
    )


def alert_fields(finding: "Finding", event: RiskEvent) -> Dict[str, Any]:
    """What an alert stores of a finding (strings, as Lua hands them to HSET), with the SKU,
    merchant and category it concerns: its own dimension's value, and for a SKU alert the event's
    merchant and category (a SKU has one of each; a merchant or a category spans many, so their
    alerts name only themselves)."""
    dims = {"sku": None, "merchant": None, "category": None}
    if finding.dimension == "sku":
        dims.update(merchant=event.merchant, category=event.category)
    if finding.dimension in dims:
        dims[finding.dimension] = finding.value
    return {
        "dimension": finding.dimension, "value": finding.value, "kind": finding.kind, "reason": finding.reason,
        "severity": finding.severity, "observed": str(int(finding.observed)),
        "expected": repr(float(finding.expected)), "ratio": repr(float(finding.ratio)),
        "window_h": str(int(finding.window_h)), "rule": finding.rule,
        "safety": "1" if finding.kind == SAFETY else "0", **{k: v or "" for k, v in dims.items()},
    }


def sample_of(event: RiskEvent) -> Dict[str, Any]:
    """The evidence an alert keeps of one event: when, where, which ticket and the masked excerpt."""
    return {"at": iso(event.at), "channel": event.channel, "ticket": event.ticket, "excerpt": event.excerpt}


class AlertStore:
    def __init__(self, redis: aioredis.Redis, prefix: str = PREFIX) -> None:
        self._redis = redis
        self._prefix = prefix
        self._scripts = {name: redis.register_script(source) for name, source in {
            "record": _RECORD, "acknowledge": _ACKNOWLEDGE, "assign": _ASSIGN, "resolve": _RESOLVE,
            "note": _NOTE, "confirm": _CONFIRM, "warning": _WARNING, "select": _SELECT, "fetch": _FETCH,
            "drop": _DROP}.items()}

    @property
    def channel(self) -> str:
        """The pub/sub channel every change publishes {"id", "op", "version", "severity"} on."""
        return self._prefix + "alerts"

    def _args(self, *rest: Any) -> List[Any]:
        return [self._prefix, self.channel, HISTORY, *rest]

    async def record(self, finding: "Finding", event: RiskEvent, series: dict) -> Alert:
        """The finding's live alert, created or updated (measures and series replaced, severity only
        raised, the event added to the samples); one live alert per finding.key, whoever records."""
        at = now()
        reply = await self._scripts["record"](args=self._args(
            finding.key, at.isoformat(), repr(at.timestamp()), f"{at:%Y%m%d}",
            json.dumps(alert_fields(finding, event), ensure_ascii=False),
            json.dumps(sample_of(event), ensure_ascii=False), json.dumps(series), SAMPLES,
            json.dumps(SEVERITY_RANK)))
        return _alert(reply)

    async def get(self, alert_id: str) -> Optional[Alert]:
        found = await self._get_many([alert_id])
        return found[0] if found else None

    async def _get_many(self, ids: Sequence[str]) -> List[Alert]:
        if not ids:
            return []
        replies = await self._scripts["fetch"](args=self._args(*ids))
        return [_alert(r) for r in replies if _text(r[0]) == "ok"]

    async def list(self, *, merchant: Optional[str] = None, category: Optional[str] = None,
                   severity: Optional[str] = None, status: Optional[str] = None, limit: int = 200) -> List[Alert]:
        """Alerts newest first, in every given filter (status "live": open or acknowledged)."""
        indexes = [self._prefix + ("alert-idx:live" if name == "status" and value == LIVE
                                   else f"alert-idx:{name}:{value}")
                   for name, value in (("status", status), ("severity", severity), ("merchant", merchant),
                                       ("category", category)) if value]
        ids = await self._scripts["select"](keys=indexes or [self._prefix + "alerts"], args=[max(0, int(limit))])
        return await self._get_many([_text(i) for i in ids])

    async def _change(self, script: str, alert_id: str, by: str, *rest: Any) -> Alert:
        reply = await self._scripts[script](args=self._args(alert_id, by, now().isoformat(), *rest))
        outcome = _text(reply[0])
        if outcome == "ok":
            return _alert(reply)
        if outcome == "missing":
            raise AlertError(f"no alert {alert_id}")
        raise AlertError(f"{script} refused for alert {alert_id}: {_text(reply[1])}")

    async def acknowledge(self, alert_id: str, by: str) -> Alert:
        return await self._change("acknowledge", alert_id, by)

    async def assign(self, alert_id: str, by: str, to: str) -> Alert:
        if not to:
            raise AlertError("an alert is assigned to someone")
        return await self._change("assign", alert_id, by, to)

    async def resolve(self, alert_id: str, by: str, note: str = "") -> Alert:
        text = (note or "").strip()
        return await self._change("resolve", alert_id, by, self._note(by, text) if text else "")

    async def add_note(self, alert_id: str, by: str, text: str) -> Alert:
        text = (text or "").strip()
        if not text:
            raise AlertError("an empty note")
        return await self._change("note", alert_id, by, self._note(by, text))

    async def confirm(self, alert_id: str, by: str) -> Alert:
        return await self._change("confirm", alert_id, by)

    async def record_warning(self, alert_id: str, summary: dict) -> Alert:
        return await self._change("warning", alert_id, "system", json.dumps(summary, ensure_ascii=False))

    async def purge_resolved(self, before: float) -> int:
        """Removes alerts resolved before `before` (unix s); the retention clean-up. Returns how many."""
        candidates = await self._redis.zrangebyscore(self._prefix + "alert-idx:status:resolved", "-inf", before)
        removed = 0
        for alert in await self._get_many([_text(i) for i in candidates]):
            if alert.resolved_at and dt.datetime.fromisoformat(alert.resolved_at).timestamp() < before:
                removed += int(await self._scripts["drop"](args=self._args(alert.id)))
        return removed

    @staticmethod
    def _note(by: str, text: str) -> str:
        return json.dumps({"by": by, "text": text, "at": now().isoformat()}, ensure_ascii=False)
