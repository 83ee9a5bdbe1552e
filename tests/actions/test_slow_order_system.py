"""Actions against an order-management system on loopback that answers too slowly."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import FollowupAction

import actions.orders as orders
import actions.returns as returns
from bot.orders.demo import demo_orders
from bot.orders.http_client import HttpOrderSystem
from bot.orders.redis_store import RedisOrderSystem
from tests.orders.fake_oms import DELAY, create_app

CUSTOMER, TOKEN, TIMEOUT_S, SLOW_S = "c1001", "oms-token", 0.3, 2.0


@pytest.fixture
async def store(redis_url):
    system = RedisOrderSystem.from_url(redis_url, prefix=f"test:{uuid.uuid4().hex}:")
    await system.save_orders(demo_orders(returns.today()))
    yield system
    await system.close()


async def slow_oms(aiohttp_server, store, monkeypatch, slow_methods):
    """Points the actions at an HTTP order system whose `slow_methods` answer after SLOW_S."""
    app = create_app(store, TOKEN, delay_s=SLOW_S, slow_methods=slow_methods)
    client = HttpOrderSystem(str((await aiohttp_server(app)).make_url("")), TOKEN, timeout_s=TIMEOUT_S)

    async def order_system():
        return client

    async def customer_of(_tracker):
        return CUSTOMER

    for module in (orders, returns):
        monkeypatch.setattr(module, "order_system", order_system)
        monkeypatch.setattr(module, "customer_of", customer_of)
    return app, client


def tracker(text, intent, slots=None):
    latest = {"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": [], "metadata": {}}
    return Tracker("s1", dict(slots or {}), latest, [{"event": "user", "text": text, "parse_data": latest}],
                   False, None, {}, "action_listen")


async def test_a_slow_order_lookup_times_out_with_an_apology(store, aiohttp_server, monkeypatch, dispatcher, domain):
    _, client = await slow_oms(aiohttp_server, store, monkeypatch, ("GET",))
    started = time.monotonic()
    events = await orders.ActionOrderStatus().run(dispatcher, tracker("我的订单到哪了", "order_status"), domain)
    assert time.monotonic() - started < SLOW_S / 2  # the timeout ended the wait, not the server
    assert [m["response"] for m in dispatcher.messages] == ["utter_order_lookup_down"]
    assert events == [FollowupAction("action_listen")]
    await client.close()


async def test_a_slow_submit_is_not_confirmed_keeps_the_form_and_a_retry_opens_one_return(
    store, aiohttp_server, monkeypatch, dispatcher, domain
):
    app, client = await slow_oms(aiohttp_server, store, monkeypatch, ("POST",))
    order, item = next((o, i) for o in await store.orders_of(CUSTOMER) for i in o.items
                       if returns.summary(o, [i.item_id], "quality", {})[0])
    slots = {"order_id": order.order_id, "return_items": [item.item_id], "return_reason": "quality",
             "return_evidence": ["photo://1"], "return_confirmed": True}
    started = time.monotonic()
    events = await returns.ActionSubmitReturn().run(dispatcher, tracker("确认", "affirm", slots), domain)
    assert time.monotonic() - started < SLOW_S / 2
    assert [m["response"] for m in dispatcher.messages] == ["utter_return_unconfirmed"]
    assert events == [{"event": "slot", "timestamp": None, "name": "return_confirmed", "value": None}]

    app[DELAY][0] = 0.0  # the order system recovers and the shopper presses 重新提交
    dispatcher.messages.clear()
    await returns.ActionSubmitReturn().run(dispatcher, tracker("确认", "affirm", slots), domain)
    assert [m["response"] for m in dispatcher.messages][0] in ("utter_return_created", "utter_return_already_open")
    await asyncio.sleep(SLOW_S)  # let the order system finish the request that timed out
    opened = [r for r in await store.returns_of(CUSTOMER) if r.order_id == order.order_id]
    assert len(opened) == 1 and opened[0].return_id == dispatcher.messages[0]["return_id"]
    await client.close()
