"""The order-management interface that actions use, with its errors.

Two implementations pass the same contract tests (tests/orders/test_contract.py):
bot.orders.redis_store.RedisOrderSystem (embedded demo default) and
bot.orders.http_client.HttpOrderSystem (a real order-management system over HTTP).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Protocol, Tuple

from bot.orders.models import Order, ReturnRequest


class OrderSystemError(Exception):
    """The order system rejected a request."""


class OrderSystemUnavailable(OrderSystemError):
    """The order system could not be reached or failed; nothing was changed."""


class OrderSystemTimeout(OrderSystemUnavailable):
    """The order system did not answer in time. A write it was still working on may yet complete;
    retrying is safe, because opening a return is idempotent per item."""


@dataclass(frozen=True)
class NewReturn:
    order_id: str
    customer_id: str
    item_ids: Tuple[str, ...]
    reason: str
    kind: str
    evidence: Tuple[str, ...] = ()
    description: str = ""
    condition: Dict[str, bool] = field(default_factory=dict)


class OrderSystem(Protocol):
    async def orders_of(self, customer_id: str) -> List[Order]:
        """The customer's orders, newest first."""

    async def order(self, order_id: str) -> Optional[Order]:
        """One order with items, status, signed-for time and logistics; None if unknown."""

    async def create_return(self, request: NewReturn) -> Tuple[ReturnRequest, bool]:
        """Opens a return; idempotent per order item. Returns (request, created)."""

    async def get_return(self, return_id: str) -> Optional[ReturnRequest]:
        """One return request; None if unknown."""

    async def returns_of(self, customer_id: str) -> List[ReturnRequest]:
        """The customer's return requests, newest first."""

    async def orders_with_sku(self, sku: str) -> List[Order]:
        """Every order with an item of this SKU, newest first: who bought a product under a safety
        alert (issue 15). An empty or unknown SKU gives []."""
