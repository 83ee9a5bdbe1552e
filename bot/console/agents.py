"""Agent accounts in Redis, passwords hashed with Argon2 (argon2-cffi), and login throttling.

Argon2 costs a few hundred milliseconds of CPU, so it never runs on the event loop: verification
(and the dummy verification for unknown names, which keeps names from being found by timing)
runs in a small, bounded thread pool. Before a try is verified it is reserved, atomically in Redis,
against three limits shared by every replica: per agent name, per client IP and for everyone, so
neither changing the name nor sending tries in parallel gets past them.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Optional

import redis.asyncio as aioredis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

PREFIX = "xb:console:"
AGENT, SUPERVISOR = "agent", "supervisor"  # console roles: supervisors also see 风险预警 and reports
ROLES = (AGENT, SUPERVISOR)
MAX_FAILED_LOGINS = 5  # per agent name, in LOCKOUT_S
MAX_FAILED_LOGINS_PER_IP = 10  # per client IP, whatever the names, in LOCKOUT_S
MAX_FAILED_LOGINS_GLOBAL = 100  # for everyone, in LOCKOUT_S
LOCKOUT_S = 300
# Argon2 verifications at once in a process (each uses the hasher's 4 lanes); more tries wait
# their turn. The thread runs at a lower CPU priority (nice 10, inherited by Argon2's lane
# threads), so that on a small machine the event loop still gets the CPU when it needs it.
VERIFY_THREADS = 1
VERIFY_NICE = 10
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password of anyone: unknown names cost the same")


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), VERIFY_NICE)  # Linux: this thread
    except (AttributeError, OSError):
        pass


_verifier = ThreadPoolExecutor(max_workers=VERIFY_THREADS, thread_name_prefix="argon2", initializer=_lower_priority)

# Reserves one login try against every limit (KEYS: name, ip, global; ARGV: window, limits...):
# refused (the 1-based index of the exceeded limit) if any counter is at its limit, else counted.
_RESERVE = """
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[i + 1]) then return i end
end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, ARGV[1]) end
end
return 0
"""
# A successful login gives its try back: the name's failures are forgotten, the IP's and the
# global count go down by one (never below zero).
_REFUND = """
redis.call('DEL', KEYS[1])
for i = 2, #KEYS do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
return 0
"""


DISPLAY_CHARS = 20  # a display name (what shoppers see, e.g. 小王) is at most this long


def check_new_agent(name: str, password: str) -> None:
    """Raises ValueError unless name and password are acceptable for a new agent."""
    if not name or len(password) < 8:
        raise ValueError("an agent needs a name and a password of at least 8 characters")


def check_display(display: str) -> str:
    """The display name, stripped; ValueError unless it is 1 to DISPLAY_CHARS printable characters."""
    display = (display or "").strip()
    if not display or len(display) > DISPLAY_CHARS or not display.isprintable():
        raise ValueError(f"a display name has 1 to {DISPLAY_CHARS} printable characters")
    return display


def _verify_hash(stored: Optional[bytes], password: str) -> bool:
    try:
        if stored is None:
            _hasher.verify(_DUMMY_HASH, password)  # same work for unknown names: no timing hint
            return False
        return _hasher.verify(stored.decode(), password)
    except (VerificationError, InvalidHashError):
        return False


class AgentStore:
    def __init__(self, client: aioredis.Redis, prefix: str = PREFIX, throttle_prefix: Optional[str] = None) -> None:
        self._redis = client
        self._prefix = prefix
        self._throttle = throttle_prefix or prefix + "login:"

    async def add(self, name: str, password: str, role: str = AGENT, display: Optional[str] = None) -> None:
        """Creates or resets an agent. `display` is the name shoppers and colleagues see (e.g.
        小王); without it an existing agent keeps theirs, and a new one is shown by their login."""
        check_new_agent(name, password)
        if role not in ROLES:
            raise ValueError(f"a role is one of {', '.join(ROLES)}")
        display = check_display(display) if display is not None else None
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(self._prefix + "agents", name, _hasher.hash(password))
        pipe.hset(self._prefix + "roles", name, role)
        if display is not None:
            pipe.hset(self._prefix + "displays", name, display)
        await pipe.execute()

    async def set_display(self, name: str, display: str) -> None:
        await self._redis.hset(self._prefix + "displays", name, check_display(display))

    async def display_name(self, name: Optional[str]) -> str:
        """What shoppers see of the agent (the reply prefix): their display name, else the login."""
        if not name:
            return ""
        stored = await self._redis.hget(self._prefix + "displays", name)
        return (stored.decode() if isinstance(stored, bytes) else stored) or name

    async def display_names(self) -> Dict[str, str]:
        """Every agent's login -> display name (the login where none is set)."""
        names = await self.names()
        stored = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                  for k, v in (await self._redis.hgetall(self._prefix + "displays")).items()}
        return {n: stored.get(n) or n for n in names}

    async def role(self, name: str) -> str:
        """The agent's role, read on every request (a change applies at once); agents saved
        before roles existed, and unknown values, are plain agents."""
        stored = await self._redis.hget(self._prefix + "roles", name)
        role = stored.decode() if isinstance(stored, bytes) else stored
        return role if role in ROLES else AGENT

    async def is_supervisor(self, name: Optional[str]) -> bool:
        return bool(name) and await self.role(name) == SUPERVISOR

    async def remove(self, name: str) -> bool:
        """Deletes the agent and ends every console session they have; True if there was one."""
        removed = bool(await self._redis.hdel(self._prefix + "agents", name))
        await self._redis.hdel(self._prefix + "roles", name)
        await self._redis.hdel(self._prefix + "displays", name)
        await self.end_sessions(name)
        return removed

    # Console sessions live in Redis (bot.console.app.ServerSessionStorage): one key per session,
    # with the session's lifetime as TTL, and per agent a set of their sessions' keys.
    def session_key(self, digest: str) -> str:
        return f"{self._prefix}session:{digest}"

    def sessions_index(self, name: str) -> str:
        return f"{self._prefix}agent-sessions:{name}"

    async def end_sessions(self, name: str) -> int:
        """Ends every console session of the agent, on every replica at once; how many."""
        index = self.sessions_index(name)
        digests = [d.decode() for d in await self._redis.smembers(index)]
        pipe = self._redis.pipeline(transaction=True)
        for digest in digests:
            pipe.delete(self.session_key(digest))
        pipe.delete(index)
        results = await pipe.execute()
        return sum(int(r) for r in results[:-1])

    async def names(self) -> list:
        return sorted(n.decode() for n in await self._redis.hkeys(self._prefix + "agents"))

    async def exists(self, name: str) -> bool:
        return bool(await self._redis.hexists(self._prefix + "agents", name))

    async def verify(self, name: str, password: str) -> bool:
        """Argon2 in the verification thread pool, never on the event loop."""
        stored: Optional[bytes] = await self._redis.hget(self._prefix + "agents", name)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_verifier, _verify_hash, stored, password)

    def _throttle_keys(self, name: str, ip: str) -> list:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return [f"{self._throttle}name:{digest}", f"{self._throttle}ip:{ip}", f"{self._throttle}all"]

    async def reserve_login(self, name: str, ip: str) -> bool:
        """Counts one login try for this name, this IP and everyone, before it is verified;
        False (nothing counted) if any of the three is at its limit."""
        refused = await self._redis.eval(_RESERVE, 3, *self._throttle_keys(name, ip), LOCKOUT_S,
                                         MAX_FAILED_LOGINS, MAX_FAILED_LOGINS_PER_IP, MAX_FAILED_LOGINS_GLOBAL)
        return int(refused) == 0

    async def login_succeeded(self, name: str, ip: str) -> None:
        await self._redis.eval(_REFUND, 3, *self._throttle_keys(name, ip))


# An agent is online while a console page of theirs holds its WebSocket open. Each socket keeps
# a field (its id -> when it lapses) in the agent's hash, whose TTL the socket refreshes; a
# closed socket removes its field, and a crashed process's fields lapse on their own.
ONLINE_TTL_S = 45


class Presence:
    """Which agents have a console open (the transfer list shows only these)."""

    def __init__(self, client: aioredis.Redis, prefix: str = PREFIX, ttl_s: int = ONLINE_TTL_S) -> None:
        self._redis, self._prefix, self._ttl = client, prefix, ttl_s

    def _key(self, name: str) -> str:
        return f"{self._prefix}online:{name}"

    async def seen(self, name: str, socket_id: str, at: float) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(self._key(name), socket_id, repr(at + self._ttl))
        pipe.expire(self._key(name), self._ttl)
        await pipe.execute()

    async def gone(self, name: str, socket_id: str) -> None:
        await self._redis.hdel(self._key(name), socket_id)

    async def online(self, names: list, at: float) -> set:
        """Those of `names` with a socket that has not lapsed at `at` (unix time)."""
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.hvals(self._key(name))
        lapses = await pipe.execute()
        return {name for name, values in zip(names, lapses) if any(float(v) > at for v in values)}
