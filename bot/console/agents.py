"""Agent accounts in Redis, passwords hashed with Argon2 (argon2-cffi), and login throttling."""

from __future__ import annotations

from typing import Optional

import redis.asyncio as aioredis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

PREFIX = "xb:console:"
MAX_FAILED_LOGINS = 5
LOCKOUT_S = 300
_hasher = PasswordHasher()


def check_new_agent(name: str, password: str) -> None:
    """Raises ValueError unless name and password are acceptable for a new agent."""
    if not name or len(password) < 8:
        raise ValueError("an agent needs a name and a password of at least 8 characters")


class AgentStore:
    def __init__(self, client: aioredis.Redis, prefix: str = PREFIX) -> None:
        self._redis = client
        self._prefix = prefix

    async def add(self, name: str, password: str) -> None:
        check_new_agent(name, password)
        await self._redis.hset(self._prefix + "agents", name, _hasher.hash(password))

    async def names(self) -> list:
        return sorted(n.decode() for n in await self._redis.hkeys(self._prefix + "agents"))

    async def verify(self, name: str, password: str) -> bool:
        stored: Optional[bytes] = await self._redis.hget(self._prefix + "agents", name)
        if stored is None:
            _hasher.hash(password)  # same work for unknown names: no timing hint
            return False
        try:
            return _hasher.verify(stored.decode(), password)
        except (VerificationError, InvalidHashError):
            return False

    async def throttled(self, client_key: str) -> bool:
        count = await self._redis.get(self._prefix + "fails:" + client_key)
        return count is not None and int(count) >= MAX_FAILED_LOGINS

    async def record_failure(self, client_key: str) -> None:
        key = self._prefix + "fails:" + client_key
        await self._redis.incr(key)
        await self._redis.expire(key, LOCKOUT_S)

    async def clear_failures(self, client_key: str) -> None:
        await self._redis.delete(self._prefix + "fails:" + client_key)
