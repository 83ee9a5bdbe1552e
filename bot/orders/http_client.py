"""Client for a real order-management system over HTTP (the same contract as RedisOrderSystem).

Endpoints (JSON, `Authorization: Bearer <ORDER_SYSTEM_TOKEN>`):
  GET  /customers/{customer_id}/orders    -> [order]
  GET  /orders/{order_id}                 -> order, or 404
  POST /returns                           -> {"return": return, "created": bool}
  GET  /returns/{return_id}               -> return, or 404
  GET  /customers/{customer_id}/returns   -> [return]
  GET  /orders?sku=<sku>                  -> [order] (every order with an item of that SKU, newest first)

Every id is sent as exactly one percent-escaped path segment (`_segment`), and the URL is sent as
encoded: an order id like `../customers/c1001/orders`, `x?y`, `x#y`, `%2F` or `..` can never
reach another resource of the order system. A SKU goes into the query fully percent-escaped
(`_query_value`), so `a&sku=b` or `x#y` is one SKU, never a second parameter or a fragment.
"""

from __future__ import annotations

import asyncio
from typing import Any, List, Optional, Tuple
from urllib.parse import quote

import aiohttp
from yarl import URL

from bot.orders.client import NewReturn, OrderSystemError, OrderSystemTimeout, OrderSystemUnavailable
from bot.orders.models import Order, ReturnRequest, order_from_dict, return_from_dict, to_dict


def _segment(value: str) -> str:
    """`value` as one path segment: everything but unreserved characters escaped, dot segments too."""
    if not value:
        raise OrderSystemError("an empty id is not a path segment")
    quoted = quote(value, safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


def _query_value(value: str) -> str:
    """`value` as one query-string value: everything but unreserved characters escaped."""
    return quote(value, safe="")


class HttpOrderSystem:
    def __init__(self, base_url: str, token: str, timeout_s: float = 3.0) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: Optional[aiohttp.ClientSession] = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self._session

    async def _request(self, method: str, path: str, json: Any = None) -> Any:
        # `path` is built from _segment()s only: sent as it is, never normalized or re-quoted.
        url = URL(str(URL(self._base)) + path, encoded=True)
        try:
            async with self._client().request(method, url, json=json) as response:
                if response.status == 404:
                    return None
                if response.status >= 500:
                    raise OrderSystemUnavailable(f"{method} {path}: HTTP {response.status}")
                if response.status >= 400:
                    raise OrderSystemError(f"{method} {path}: HTTP {response.status}")
                return await response.json()
        except asyncio.TimeoutError as error:  # before ClientError: aiohttp's timeouts are both
            raise OrderSystemTimeout(f"{method} {path}: no answer within {self._timeout.total} s") from error
        except aiohttp.ClientError as error:
            raise OrderSystemUnavailable(f"{method} {path}: {error!r}") from error

    async def orders_of(self, customer_id: str) -> List[Order]:
        found = await self._request("GET", f"/customers/{_segment(customer_id)}/orders")
        return [order_from_dict(o) for o in found or []]

    async def order(self, order_id: str) -> Optional[Order]:
        found = await self._request("GET", f"/orders/{_segment(order_id)}")
        return order_from_dict(found) if found else None

    async def orders_with_sku(self, sku: str) -> List[Order]:
        if not sku:
            return []
        found = await self._request("GET", f"/orders?sku={_query_value(sku)}")
        return [order_from_dict(o) for o in found or []]

    async def create_return(self, request: NewReturn) -> Tuple[ReturnRequest, bool]:
        body = await self._request("POST", "/returns", json=to_dict(request))
        return return_from_dict(body["return"]), bool(body["created"])

    async def get_return(self, return_id: str) -> Optional[ReturnRequest]:
        found = await self._request("GET", f"/returns/{_segment(return_id)}")
        return return_from_dict(found) if found else None

    async def returns_of(self, customer_id: str) -> List[ReturnRequest]:
        found = await self._request("GET", f"/customers/{_segment(customer_id)}/returns")
        return [return_from_dict(r) for r in found or []]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
