"""The embedded order system: orders and returns in Redis, seeded with demo orders.

Opening a return runs as one Lua script, so an order item can never get two open returns,
even when the same submit arrives twice at once, and a failure leaves nothing half-written.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import List, Optional, Sequence, Tuple

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.orders.client import NewReturn, OrderSystemUnavailable
from bot.orders.models import SHANGHAI, Order, ReturnRequest, order_from_dict, return_from_dict, to_dict
from bot.redis_url import async_redis

PREFIX = "xb:oms:"

# KEYS: item lock keys..., return key template prefix, customer returns list, counter key
# ARGV: return json (without id), return id prefix (date), customer id
_OPEN_RETURN = """
for i = 1, #KEYS - 2 do
  local existing = redis.call('GET', KEYS[i])
  if existing then return {existing, 0} end
end
local seq = redis.call('INCR', KEYS[#KEYS])
local return_id = ARGV[2] .. string.format('%06d', seq)
local doc = cjson.decode(ARGV[1])
doc['return_id'] = return_id
redis.call('SET', ARGV[3] .. return_id, cjson.encode(doc))
for i = 1, #KEYS - 2 do redis.call('SET', KEYS[i], return_id) end
redis.call('LPUSH', KEYS[#KEYS - 1], return_id)
return {return_id, 1}
"""


def _skus(order: Order) -> set:
    return {item.sku for item in order.items if item.sku}


class RedisOrderSystem:
    def __init__(self, client: aioredis.Redis, prefix: str = PREFIX) -> None:
        self._redis = client
        self._prefix = prefix
        self._open_return = client.register_script(_OPEN_RETURN)

    @classmethod
    def from_url(cls, url: str, prefix: str = PREFIX) -> "RedisOrderSystem":
        return cls(async_redis(url, socket_timeout=3, socket_connect_timeout=3), prefix)

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    async def _call(self, coroutine):
        try:
            return await coroutine
        except (RedisError, OSError) as error:
            raise OrderSystemUnavailable(str(error)) from error

    async def save_orders(self, orders: Sequence[Order]) -> None:
        """Stores orders and indexes them by customer and by SKU (used for seeding and tests)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for order in orders:
                pipe.set(self._key("order", order.order_id), json.dumps(to_dict(order), ensure_ascii=False))
                pipe.zadd(self._key("customer", order.customer_id, "orders"),
                          {order.order_id: order.created_at.timestamp()})
                for sku in _skus(order):
                    pipe.zadd(self._key("sku", sku, "orders"), {order.order_id: order.created_at.timestamp()})
            await self._call(pipe.execute())

    async def replace_demo_orders(self, customers, orders: Sequence[Order]) -> None:
        """Demo data is re-dated every start: drop the demo customers' old orders from the customer
        and SKU indexes first, so yesterday's copies are never warned about twice."""
        old = []
        for customer in customers:
            ids = await self._call(self._redis.zrange(self._key("customer", customer, "orders"), 0, -1))
            old += [o for o in [await self.order(i.decode()) for i in ids] if o is not None]
        async with self._redis.pipeline(transaction=True) as pipe:
            for order in old:
                for sku in _skus(order):
                    pipe.zrem(self._key("sku", sku, "orders"), order.order_id)
            pipe.delete(*(self._key("customer", c, "orders") for c in customers))
            await self._call(pipe.execute())
        await self.save_orders(orders)

    async def orders_of(self, customer_id: str) -> List[Order]:
        ids = await self._call(self._redis.zrevrange(self._key("customer", customer_id, "orders"), 0, 49))
        orders = [await self.order(i.decode()) for i in ids]
        return [o for o in orders if o is not None]

    async def orders_with_sku(self, sku: str) -> List[Order]:
        if not sku:
            return []
        ids = await self._call(self._redis.zrevrange(self._key("sku", sku, "orders"), 0, -1))
        orders = [await self.order(i.decode()) for i in ids]
        return [o for o in orders if o is not None]

    async def order(self, order_id: str) -> Optional[Order]:
        raw = await self._call(self._redis.get(self._key("order", order_id)))
        return order_from_dict(json.loads(raw)) if raw else None

    async def create_return(self, request: NewReturn) -> Tuple[ReturnRequest, bool]:
        now = dt.datetime.now(SHANGHAI)
        doc = {**to_dict(request), "status": "open", "created_at": now.isoformat()}
        doc["item_ids"] = list(request.item_ids)
        doc["evidence"] = list(request.evidence)
        locks = [self._key("return-open", request.order_id, item) for item in sorted(set(request.item_ids))]
        keys = locks + [self._key("customer", request.customer_id, "returns"), self._key("return-seq")]
        return_id, created = await self._call(
            self._open_return(keys=keys, args=[json.dumps(doc, ensure_ascii=False), f"R{now:%Y%m%d}", self._key("return", "")])
        )
        stored = await self.get_return(return_id.decode() if isinstance(return_id, bytes) else return_id)
        return stored, bool(created)

    async def get_return(self, return_id: str) -> Optional[ReturnRequest]:
        raw = await self._call(self._redis.get(self._key("return", return_id)))
        return return_from_dict(json.loads(raw)) if raw else None

    async def returns_of(self, customer_id: str) -> List[ReturnRequest]:
        ids = await self._call(self._redis.lrange(self._key("customer", customer_id, "returns"), 0, 49))
        found = [await self.get_return(i.decode()) for i in ids]
        return [r for r in found if r is not None]

    async def close(self) -> None:
        await self._redis.aclose() if hasattr(self._redis, "aclose") else await self._redis.close()
