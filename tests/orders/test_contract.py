"""One contract, two order systems: the embedded Redis store and the HTTP client."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
import uuid

import pytest

from bot.orders.client import NewReturn, OrderSystemTimeout, OrderSystemUnavailable
from bot.orders.demo import demo_orders
from bot.orders.http_client import HttpOrderSystem
from bot.orders.models import OrderStatus
from bot.orders.redis_store import RedisOrderSystem
from tests.orders.fake_oms import DELAY, create_app

TODAY = dt.date(2026, 11, 28)
TOKEN = "oms-test-token"


@pytest.fixture
async def redis_system(redis_url):
    system = RedisOrderSystem.from_url(redis_url, prefix=f"test:{uuid.uuid4().hex}:")
    await system.save_orders(demo_orders(TODAY))
    yield system
    await system.close()


@pytest.fixture(params=["redis", "http"])
async def system(request, redis_system, aiohttp_server):
    if request.param == "redis":
        yield redis_system
        return
    server = await aiohttp_server(create_app(redis_system, TOKEN))
    client = HttpOrderSystem(str(server.make_url("")), TOKEN)
    yield client
    await client.close()


def new_return(order, items=("i1",), reason="no_reason"):
    return NewReturn(order.order_id, order.customer_id, tuple(items), reason, "return",
                     evidence=("photo://1",), condition={"complete": True})


async def test_orders_of_a_customer_newest_first(system):
    orders = await system.orders_of("c1001")
    assert len(orders) == 8
    assert [o.created_at for o in orders] == sorted((o.created_at for o in orders), reverse=True)
    assert {o.status for o in orders} == set(OrderStatus.ALL)
    assert all(len(o.items) >= 2 for o in orders)
    assert await system.orders_of("nobody") == []


async def test_one_order_has_items_signing_and_logistics(system):
    delivered = next(o for o in await system.orders_of("c1001") if o.status == OrderStatus.DELIVERED)
    again = await system.order(delivered.order_id)
    assert again == delivered
    assert again.signed_at.tzinfo is not None and again.logistics[-1].description.startswith("已签收")
    assert await system.order("2099010100000000") is None


async def test_create_return_is_idempotent_per_item(system):
    order = (await system.orders_of("c1002"))[0]
    first, created = await system.create_return(new_return(order))
    assert created and first.return_id.startswith("R") and first.status == "open"
    assert first.item_ids == ("i1",) and first.evidence == ("photo://1",)
    retried, created_again = await system.create_return(new_return(order))
    assert (retried.return_id, created_again) == (first.return_id, False)
    overlapping, created_overlap = await system.create_return(new_return(order, items=("i2", "i1")))
    assert (overlapping.return_id, created_overlap) == (first.return_id, False)
    other, created_other = await system.create_return(new_return(order, items=("i2",)))
    assert created_other and other.return_id != first.return_id
    assert await system.get_return(first.return_id) == first
    assert {r.return_id for r in await system.returns_of("c1002")} == {first.return_id, other.return_id}
    assert await system.get_return("R20990101000001") is None


async def test_concurrent_submits_open_exactly_one_return(system):
    order = (await system.orders_of("c1002"))[1]
    results = await asyncio.gather(*(system.create_return(new_return(order)) for _ in range(8)))
    assert len({r.return_id for r, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_redis_outage_is_reported_as_unavailable(embedded_redis):
    system = RedisOrderSystem.from_url(embedded_redis.url)
    await system.save_orders(demo_orders(TODAY))
    order = (await system.orders_of("c1001"))[0]
    embedded_redis.stop()
    with pytest.raises(OrderSystemUnavailable):
        await system.create_return(new_return(order))
    embedded_redis.start()
    assert await system.returns_of("c1001") == []  # nothing half-written
    await system.close()


async def test_slow_order_system_times_out(redis_system, aiohttp_server):
    server = await aiohttp_server(create_app(redis_system, TOKEN, delay_s=2.0))
    client = HttpOrderSystem(str(server.make_url("")), TOKEN, timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(OrderSystemTimeout):
        await client.orders_of("c1001")
    assert time.monotonic() - started < 1.0  # the timeout, not the server, ended the wait
    await client.close()


async def test_a_submit_that_times_out_is_never_duplicated_by_the_retry(redis_system, aiohttp_server):
    app = create_app(redis_system, TOKEN, delay_s=1.0)
    server = await aiohttp_server(app)
    client = HttpOrderSystem(str(server.make_url("")), TOKEN, timeout_s=0.3)
    order = (await redis_system.orders_of("c1002"))[0]
    with pytest.raises(OrderSystemTimeout):
        await client.create_return(new_return(order))
    app[DELAY][0] = 0.0  # the order system recovers; the shopper submits again
    retried, _ = await client.create_return(new_return(order))
    await asyncio.sleep(1.0)  # the slow request may still complete on the order system's side
    assert [r.return_id for r in await redis_system.returns_of("c1002")] == [retried.return_id]
    await client.close()


async def test_wrong_token_is_an_error_not_an_empty_answer(redis_system, aiohttp_server):
    from bot.orders.client import OrderSystemError

    server = await aiohttp_server(create_app(redis_system, TOKEN))
    client = HttpOrderSystem(str(server.make_url("")), "wrong")
    with pytest.raises(OrderSystemError):
        await client.orders_of("c1001")
    await client.close()


async def test_orders_with_a_sku_are_every_buyers_orders_newest_first(system, redis_system):
    cooker = next(o for o in await redis_system.orders_of("c1001") if any(i.sku == "SKU-60001" for i in o.items))
    later = dataclasses.replace(cooker, order_id="2026112700000099", customer_id="c1002",
                                created_at=cooker.created_at + dt.timedelta(days=30))
    await redis_system.save_orders([later])
    found = await system.orders_with_sku("SKU-60001")
    assert [(o.order_id, o.customer_id) for o in found] == [(later.order_id, "c1002"), (cooker.order_id, "c1001")]
    assert found[1] == cooker and any(i.name == "智能电饭煲" for i in found[1].items)
    assert await system.orders_with_sku("SKU-99999") == []
    assert await system.orders_with_sku("") == []


@pytest.mark.parametrize("sku", ["x&sku=SKU-60001", "SKU-60001#", "SKU-60001 ", "../orders/x", "%53KU-60001", "SKU-6000?"])
async def test_a_sku_is_one_query_value_never_another_query(system, sku):
    assert await system.orders_with_sku(sku) == []


async def test_redating_the_demo_orders_leaves_no_stale_sku_entries(redis_system):
    tomorrow = demo_orders(TODAY + dt.timedelta(days=1))
    await redis_system.replace_demo_orders(("c1001", "c1002"), tomorrow)
    found = await redis_system.orders_with_sku("SKU-60001")
    assert [o.order_id for o in found] == [o.order_id for o in tomorrow if any(i.sku == "SKU-60001" for i in o.items)]
