"""Tickets and the handoff queue in Redis. Claiming is one Lua script, so two agents can never
both own a conversation. The queue is ordered by priority, then by waiting time.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Dict, List, Optional

import redis.asyncio as aioredis

from bot.handoff.triggers import PRIORITY_ORDER, rules
from bot.orders.models import SHANGHAI
from bot.redis_url import async_redis

PREFIX = "xb:handoff:"
WAITING, CLAIMED, RESOLVED = "waiting", "claimed", "resolved"

# KEYS[1] ticket key, KEYS[2] queue; ARGV[1] agent, ARGV[2] now (iso)
_CLAIM = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ticket = cjson.decode(raw)
if ticket['status'] ~= 'waiting' then return 0 end
ticket['status'] = 'claimed'
ticket['assignee'] = ARGV[1]
if ticket['claimed_at'] == cjson.null or ticket['claimed_at'] == nil then ticket['claimed_at'] = ARGV[2] end
redis.call('SET', KEYS[1], cjson.encode(ticket))
redis.call('ZREM', KEYS[2], ticket['id'])
return 1
"""


class TicketError(Exception):
    """The ticket does not exist, or the agent does not own it."""


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
    notes: List[Dict[str, str]] = field(default_factory=list)
    evidence: Dict[str, Any] = field(default_factory=dict)

    @property
    def category_label(self) -> str:
        return rules()["categories"].get(self.category, self.category)


def now() -> dt.datetime:
    return dt.datetime.now(SHANGHAI)


def _queue_score(priority: str, created: dt.datetime) -> float:
    return PRIORITY_ORDER[priority] * 1e11 + created.timestamp()


class TicketStore:
    def __init__(self, client: aioredis.Redis, prefix: str = PREFIX) -> None:
        self._redis = client
        self._prefix = prefix
        self._claim = client.register_script(_CLAIM)

    @classmethod
    def from_url(cls, url: str, prefix: str = PREFIX) -> "TicketStore":
        return cls(async_redis(url, socket_timeout=3, socket_connect_timeout=3), prefix)

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    async def _save(self, ticket: Ticket) -> Ticket:
        await self._redis.set(self._key("ticket", ticket.id), json.dumps(asdict(ticket), ensure_ascii=False))
        return ticket

    async def get(self, ticket_id: str) -> Optional[Ticket]:
        raw = await self._redis.get(self._key("ticket", ticket_id))
        return Ticket(**json.loads(raw)) if raw else None

    async def open_ticket_for(self, sender_id: str) -> Optional[Ticket]:
        ticket_id = await self._redis.get(self._key("open", sender_id))
        return await self.get(ticket_id.decode()) if ticket_id else None

    async def create(self, sender_id: str, category: str, priority: str, channel: str, summary: str,
                     customer: Optional[str] = None, order_id: Optional[str] = None,
                     evidence: Optional[Dict[str, Any]] = None) -> tuple:
        """Opens a ticket, or returns the conversation's open one. Returns (ticket, created)."""
        existing = await self.open_ticket_for(sender_id)
        if existing is not None:
            return existing, False
        created = now()
        seq = await self._redis.incr(self._key("seq"))
        ticket = Ticket(
            id=f"T{created:%Y%m%d}{seq:05d}", sender_id=sender_id, category=category, priority=priority,
            channel=channel, summary=summary, created_at=created.isoformat(),
            sla_due=(created + dt.timedelta(minutes=rules()["sla_minutes"][priority])).isoformat(),
            customer=customer, order_id=order_id, evidence=evidence or {},
        )
        if not await self._redis.set(self._key("open", sender_id), ticket.id, nx=True):
            return await self.open_ticket_for(sender_id), False  # a concurrent escalation won
        await self._save(ticket)
        await self._redis.zadd(self._key("queue"), {ticket.id: _queue_score(priority, created)})
        await self._redis.rpush(self._key("all"), ticket.id)
        return ticket, True

    async def queue(self) -> List[Ticket]:
        """Waiting tickets: urgent first, then the longest waiting."""
        ids = await self._redis.zrange(self._key("queue"), 0, -1)
        found = [await self.get(i.decode()) for i in ids]
        return [t for t in found if t is not None]

    async def position(self, ticket_id: str) -> Optional[int]:
        rank = await self._redis.zrank(self._key("queue"), ticket_id)
        return None if rank is None else rank + 1

    async def claim(self, ticket_id: str, agent: str) -> bool:
        """True for exactly one agent, however many try at the same moment."""
        return bool(await self._claim(keys=[self._key("ticket", ticket_id), self._key("queue")],
                                      args=[agent, now().isoformat()]))

    async def _owned(self, ticket_id: str, agent: str) -> Ticket:
        ticket = await self.get(ticket_id)
        if ticket is None or ticket.status != CLAIMED or ticket.assignee != agent:
            raise TicketError(f"{agent} does not own {ticket_id}")
        return ticket

    async def release(self, ticket_id: str, agent: str) -> Ticket:
        ticket = replace(await self._owned(ticket_id, agent), status=WAITING, assignee=None)
        await self._save(ticket)
        await self._redis.zadd(self._key("queue"), {ticket.id: _queue_score(ticket.priority, dt.datetime.fromisoformat(ticket.created_at))})
        return ticket

    async def transfer(self, ticket_id: str, agent: str, to_agent: str) -> Ticket:
        return await self._save(replace(await self._owned(ticket_id, agent), assignee=to_agent))

    async def add_note(self, ticket_id: str, agent: str, text: str) -> Ticket:
        ticket = await self.get(ticket_id)
        if ticket is None:
            raise TicketError(f"no ticket {ticket_id}")
        note = {"agent": agent, "text": text, "at": now().isoformat()}
        return await self._save(replace(ticket, notes=ticket.notes + [note]))

    async def resolve(self, ticket_id: str, agent: str) -> Ticket:
        ticket = replace(await self._owned(ticket_id, agent), status=RESOLVED, resolved_at=now().isoformat())
        await self._save(ticket)
        await self._redis.delete(self._key("open", ticket.sender_id))
        await self._redis.set(self._key("last-resolved", ticket.sender_id), ticket.id)
        return ticket

    async def rate(self, sender_id: str, rating: int) -> Optional[Ticket]:
        ticket_id = await self._redis.get(self._key("last-resolved", sender_id))
        ticket = await self.get(ticket_id.decode()) if ticket_id else None
        if ticket is None:
            return None
        return await self._save(replace(ticket, rating=rating))

    async def mark_sla_notified(self, ticket_id: str) -> Ticket:
        return await self._save(replace(await self.get(ticket_id), sla_notified=True))

    async def overdue(self, at: Optional[dt.datetime] = None) -> List[Ticket]:
        at = at or now()
        return [t for t in await self.queue() if not t.sla_notified and dt.datetime.fromisoformat(t.sla_due) <= at]

    async def all_tickets(self) -> List[Ticket]:
        ids = await self._redis.lrange(self._key("all"), 0, -1)
        found = [await self.get(i.decode()) for i in ids]
        return [t for t in found if t is not None]

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
