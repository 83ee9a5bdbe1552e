"""Attack (issue 13, "order-digits-guessing"): guess the four phone digits of someone's order from
many conversations. The real actions run against a real Redis; the limit is per order, so a fresh
conversation id per guess no longer helps: after 3 wrong guesses in a day even the right digits
do not unlock the order.
"""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import actions.orders as orders
import actions.returns as returns
import actions.services as services
from bot.orders.demo import demo_orders
from bot.orders.redis_store import RedisOrderSystem


@pytest.fixture
async def system(redis_url, monkeypatch):
    store = RedisOrderSystem.from_url(redis_url, prefix=f"test:{uuid.uuid4().hex}:")
    # A fresh order id per test, so the per-order limit of another test never interferes.
    suffix = uuid.uuid4().int % 10**6
    fresh = []
    for order in demo_orders(returns.today()):
        fresh.append(type(order)(**{**order.__dict__, "order_id": f"{order.order_id}{suffix:06d}"}))
    await store.save_orders(fresh)
    limits_client = aioredis.Redis.from_url(redis_url)

    async def order_system():
        return store

    async def nobody(_tracker):
        return None

    for module in (orders, returns):
        monkeypatch.setattr(module, "order_system", order_system)
        monkeypatch.setattr(module, "customer_of", nobody)
    monkeypatch.setattr(services, "limits_redis", lambda: limits_client, raising=False)
    yield store
    await store.close()
    await limits_client.close()


def inform(sender: str, text: str, pending: str, channel: str = "rest", metadata=None) -> Tracker:
    latest = {"text": text, "intent": {"name": "inform", "confidence": 1.0}, "entities": [],
              "metadata": metadata or {}}
    return Tracker(sender, {"pending_lookup": pending}, latest,
                   [{"event": "user", "text": text, "parse_data": latest, "input_channel": channel,
                     "metadata": metadata or {}}],
                   False, None, {}, "action_listen")


def form_digits(sender: str, digits: str, order_id: str) -> Tracker:
    latest = {"text": digits, "intent": {"name": "inform", "confidence": 1.0}, "entities": [], "metadata": {}}
    return Tracker(sender, {"order_id": order_id, "requested_slot": "phone_last4"}, latest,
                   [{"event": "user", "text": digits, "parse_data": latest, "input_channel": "rest"}],
                   False, None, {"name": "return_form"}, "action_listen")


def wrong_guesses(phone: str, n: int):
    return [g for g in (f"{i:04d}" for i in range(n + 1)) if g != phone[-4:]][:n]


async def victim_order(store):
    return (await store.orders_of("c1001"))[0]


def unlocked(events, order_id) -> bool:
    return any(e.get("name") == "verified_order_ids" and order_id in (e.get("value") or []) for e in events)


@pytest.mark.attack("order-digits-guessing")
async def test_fresh_conversation_ids_do_not_reset_the_guesses(system):
    order = await victim_order(system)
    action = orders.ActionHandleInform()
    for n, guess in enumerate(wrong_guesses(order.phone, 12)):
        dispatcher = CollectingDispatcher()
        events = await action.run(dispatcher, inform(f"attacker-{uuid.uuid4().hex}", guess, order.order_id), {})
        assert not unlocked(events, order.order_id)
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, inform(f"attacker-{uuid.uuid4().hex}", order.phone[-4:], order.order_id), {})
    assert not unlocked(events, order.order_id), "the right digits still unlocked the order after 12 wrong guesses"
    assert order.order_id not in " ".join(m.get("summary") or "" for m in dispatcher.messages)
    assert [m["response"] for m in dispatcher.messages] == ["utter_order_verify_locked"]


@pytest.mark.attack("order-digits-guessing")
async def test_three_failures_lock_the_order_across_channels_and_the_return_form(system):
    order = await victim_order(system)
    action = orders.ActionHandleInform()
    for guess, channel in zip(wrong_guesses(order.phone, 3), ("rest", "socketio", "wechat")):
        await action.run(CollectingDispatcher(), inform(f"c-{uuid.uuid4().hex}", guess, order.order_id, channel), {})
    # The right digits, in the return form of yet another conversation: still locked.
    dispatcher = CollectingDispatcher()
    result = await returns.ValidateReturnForm().validate_phone_last4(
        order.phone[-4:], dispatcher, form_digits(f"c-{uuid.uuid4().hex}", order.phone[-4:], order.order_id), {})
    assert order.order_id not in (result.get("verified_order_ids") or []), "the return form verified a locked order"
    assert [m["response"] for m in dispatcher.messages] == ["utter_order_verify_locked"]
    assert result.get("form_failures") == returns.MAX_FORM_FAILURES  # a person takes over


@pytest.mark.attack("order-digits-guessing")
async def test_parallel_guesses_cannot_slip_past_the_limit(system):
    import asyncio

    order = await victim_order(system)
    action = orders.ActionHandleInform()
    guesses = wrong_guesses(order.phone, 199) + [order.phone[-4:]]
    dispatchers = [CollectingDispatcher() for _ in guesses]
    await asyncio.gather(*(action.run(d, inform(f"p-{uuid.uuid4().hex}", g, order.order_id), {})
                           for d, g in zip(dispatchers, guesses)))
    replies = [m["response"] for d in dispatchers for m in d.messages]
    compared = len(replies) - replies.count("utter_order_verify_locked")
    assert compared <= 3, f"{compared} of 200 parallel guesses were compared with the phone number"


async def test_the_owner_is_not_locked_by_their_own_right_answers(system):
    order = await victim_order(system)
    action = orders.ActionHandleInform()
    for _ in range(5):
        events = await action.run(CollectingDispatcher(), inform(f"o-{uuid.uuid4().hex}", order.phone[-4:], order.order_id), {})
        assert unlocked(events, order.order_id)


async def test_one_client_ip_cannot_spread_guesses_over_many_orders(system, monkeypatch):
    monkeypatch.setattr(returns, "VERIFY_FAILURES_PER_IP", 4)
    ip = f"203.0.113.{uuid.uuid4().int % 250}"
    own = await victim_order(system)
    others = [o for o in await system.orders_of("c1002")][:2] + [own]
    action = orders.ActionHandleInform()
    for order in others[:2]:
        for guess in wrong_guesses(order.phone, 2):
            await action.run(CollectingDispatcher(), inform(f"i-{uuid.uuid4().hex}", guess, order.order_id,
                                                            metadata={"client_ip": ip}), {})
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, inform(f"i-{uuid.uuid4().hex}", own.phone[-4:], own.order_id,
                                                 metadata={"client_ip": ip}), {})
    assert not unlocked(events, own.order_id)
    assert [m["response"] for m in dispatcher.messages] == ["utter_order_verify_locked"]
    # The same right digits from another IP still work: the IP was locked, not the order.
    events = await action.run(CollectingDispatcher(), inform(f"i-{uuid.uuid4().hex}", own.phone[-4:], own.order_id,
                                                             metadata={"client_ip": "198.51.100.7"}), {})
    assert unlocked(events, own.order_id)
