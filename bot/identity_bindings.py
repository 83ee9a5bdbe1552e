"""WeChat openid -> customer bindings behind one interface (no Rasa imports).

The WeChat channel vouches for a shopper's openid (server side); which customer that openid
belongs to is the shop's knowledge, not the order system's. Two implementations pass the same
tests (tests/test_identity_bindings.py):

* `RedisIdentityBindings` (default): bindings in Redis under `xb:identity:wechat:<openid>`. The
  embedded demo seeds its demo customers here; a shop without an identity service writes its
  bindings with `python -m bot.identity_bindings bind OPENID CUSTOMER_ID`.
* `HttpIdentityBindings`: the shop's identity service over HTTP, selected by IDENTITY_BASE_URL
  (with IDENTITY_TOKEN, IDENTITY_TIMEOUT_S), independent of which order system is configured.
  Endpoints (JSON, `Authorization: Bearer <IDENTITY_TOKEN>`):
    GET /wechat/bindings/{openid}   -> {"customer_id": "..."}, or 404 when unbound
    PUT /wechat/bindings/{openid}   body {"customer_id": "..."} -> 2xx
"""

from __future__ import annotations

import asyncio
import os
from typing import Mapping, Optional, Protocol
from urllib.parse import quote

import aiohttp
import redis.asyncio as aioredis
from redis.exceptions import RedisError


PREFIX = "xb:identity:wechat:"


class IdentityUnavailable(Exception):
    """The identity store could not be reached or failed; nothing was changed."""


class IdentityBindings(Protocol):
    async def customer_for_openid(self, openid: str) -> Optional[str]:
        """The customer a WeChat openid is bound to; None if unbound."""

    async def bind_openid(self, openid: str, customer_id: str) -> None:
        """Binds (or re-binds) a WeChat openid to a customer."""


def _check(openid: str, customer_id: Optional[str] = None) -> None:
    if not openid or not isinstance(openid, str):
        raise ValueError("openid must be a non-empty string")
    if customer_id is not None and (not customer_id or not isinstance(customer_id, str)):
        raise ValueError("customer id must be a non-empty string")


class RedisIdentityBindings:
    def __init__(self, client: aioredis.Redis, prefix: str = PREFIX) -> None:
        self._redis, self._prefix = client, prefix

    async def customer_for_openid(self, openid: str) -> Optional[str]:
        if not openid:
            return None
        try:
            found = await self._redis.get(self._prefix + openid)
        except (RedisError, OSError) as error:
            raise IdentityUnavailable(str(error)) from error
        return (found.decode() if isinstance(found, bytes) else found) or None

    async def bind_openid(self, openid: str, customer_id: str) -> None:
        _check(openid, customer_id)
        try:
            await self._redis.set(self._prefix + openid, customer_id)
        except (RedisError, OSError) as error:
            raise IdentityUnavailable(str(error)) from error


class HttpIdentityBindings:
    def __init__(self, base_url: str, token: str = "", timeout_s: float = 3.0) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: Optional[aiohttp.ClientSession] = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self._session

    def _url(self, openid: str) -> str:
        return f"{self._base}/wechat/bindings/{quote(openid, safe='')}"

    async def customer_for_openid(self, openid: str) -> Optional[str]:
        if not openid:
            return None
        try:
            async with self._client().get(self._url(openid)) as response:
                if response.status == 404:
                    return None
                if response.status >= 400:
                    raise IdentityUnavailable(f"GET binding: HTTP {response.status}")
                body = await response.json()
        except asyncio.TimeoutError as error:
            raise IdentityUnavailable(f"GET binding: no answer within {self._timeout.total} s") from error
        except aiohttp.ClientError as error:
            raise IdentityUnavailable(f"GET binding: {error!r}") from error
        customer = body.get("customer_id") if isinstance(body, dict) else None
        return customer if isinstance(customer, str) and customer else None

    async def bind_openid(self, openid: str, customer_id: str) -> None:
        _check(openid, customer_id)
        try:
            async with self._client().put(self._url(openid), json={"customer_id": customer_id}) as response:
                if response.status >= 400:
                    raise IdentityUnavailable(f"PUT binding: HTTP {response.status}")
        except asyncio.TimeoutError as error:
            raise IdentityUnavailable(f"PUT binding: no answer within {self._timeout.total} s") from error
        except aiohttp.ClientError as error:
            raise IdentityUnavailable(f"PUT binding: {error!r}") from error

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def identity_bindings_for(redis: aioredis.Redis, env: Mapping[str, str] = os.environ) -> IdentityBindings:
    """IDENTITY_BASE_URL selects the HTTP identity service; otherwise bindings live in Redis."""
    base_url = env.get("IDENTITY_BASE_URL")
    if base_url:
        return HttpIdentityBindings(base_url, env.get("IDENTITY_TOKEN", ""),
                                    float(env.get("IDENTITY_TIMEOUT_S", "3")))
    return RedisIdentityBindings(redis)


def main(argv: list) -> int:
    """`python -m bot.identity_bindings bind OPENID CUSTOMER_ID` | `lookup OPENID`: the configured store."""
    import sys

    from bot.redis_url import async_redis
    from bot.settings import Settings

    if not argv or (argv[0], len(argv)) not in (("bind", 3), ("lookup", 2)):
        print(main.__doc__, file=sys.stderr)
        return 2

    async def run() -> int:
        settings = Settings.from_env()
        client = async_redis(settings.redis_url or f"redis://127.0.0.1:{settings.embedded_redis_port}/0")
        store = identity_bindings_for(client)
        try:
            if argv[0] == "bind":
                await store.bind_openid(argv[1], argv[2])
            else:
                print(await store.customer_for_openid(argv[1]) or "")
        finally:
            if isinstance(store, HttpIdentityBindings):
                await store.close()
            await client.close()
        return 0

    return asyncio.run(run())


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
