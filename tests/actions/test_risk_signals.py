"""Rights signals from the actions (issue 15): what each action emits into the risk stream, about
which SKU, merchant and category, with pseudonyms only; and that Redis being down never breaks
the conversation."""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis.asyncio as aioredis
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import actions.handoff as handoff
import actions.orders as orders
import actions.returns as returns
import actions.risk_signals as risk_signals
import actions.services as services
from bot.handoff.tickets import TicketStore
from bot.orders.demo import demo_orders
from bot.orders.models import to_dict
from bot.orders.redis_store import RedisOrderSystem
from bot.risk.events import RiskEvent, pseudonym
from bot.risk.signals import complaint_reason, order_naming, pick_item, safety_reason, subject
from bot.risk.stream import stream_key

CUSTOMER = "c1001"
ROOT = Path(__file__).resolve().parents[2]


def demo(suffix: str):
    return next(o for o in demo_orders(returns.today()) if o.order_id.endswith(suffix))


# -- pure: reasons and items ------------------------------------------------------------------
@pytest.mark.parametrize("text, reason", [
    ("我买的电饭煲着火了", "fire"), ("充电器冒烟还爆炸了", "fire"), ("着火了，手也烫伤了", "fire"),
    ("台灯漏电，我被电到了", "shock"), ("吃了车厘子上吐下泻", "poisoning"), ("孩子误吞了零件", "injury"),
    ("杯子碎了把手割伤流血", "injury"), ("感觉有安全隐患", "other"), ("", "other"),
])
def test_safety_reason(text, reason):
    assert safety_reason(text) == reason


def test_every_safety_word_of_the_escalation_rules_has_a_kind():
    words = yaml.safe_load((ROOT / "knowledge" / "escalation.yml").read_text(encoding="utf-8"))["safety"]
    assert [w for w in words if safety_reason(w) == "other"] == []


@pytest.mark.parametrize("text, reason", [
    ("你们卖的是假货", "counterfeit"), ("收到就坏了，质量太差", "quality"), ("实物和描述不符", "not_as_described"),
    ("快递一直没收到", "delivery"), ("刚买就降价，先涨后降", "price"), ("客服态度太差", "service"), ("我要投诉", "other"),
])
def test_complaint_reason(text, reason):
    assert complaint_reason(text) == reason


def test_the_item_a_safety_report_names_is_picked():
    items = to_dict(demo("15"))["items"]  # 智能电饭煲, 保温杯
    assert pick_item("电饭煲着火了", items)["sku"] == "SKU-60001"
    assert pick_item("保温杯漏水烫伤了", items)["sku"] == "SKU-60002"
    assert pick_item("东西着火了", items) is None  # two items, neither named
    assert pick_item("东西着火了", items[:1])["sku"] == "SKU-60001"  # the only item
    assert pick_item("着火了", []) is None


def test_a_name_two_different_skus_share_names_neither():
    items = [{"name": "定制T恤", "sku": "A"}, {"name": "纯棉T恤", "sku": "B"}]
    assert pick_item("T恤起火了", items) is None
    assert pick_item("纯棉T恤起火了", items)["sku"] == "B"


def test_the_order_a_report_names_among_the_shoppers_orders():
    mine = [to_dict(o) for o in demo_orders(returns.today()) if o.customer_id == CUSTOMER]
    assert order_naming("上个月买的电饭煲冒烟了", mine)["order_id"] == demo("15").order_id
    assert order_naming("东西冒烟了", mine) is None
    assert order_naming("电饭煲冒烟了", []) is None


def test_subject_falls_back_to_what_all_items_share():
    order = to_dict(demo("12"))  # 降噪蓝牙耳机 and 快充充电器, both m-shuma / 手机数码
    assert subject(order, "冒烟了") == {"sku": None, "merchant": "m-shuma", "category": "手机数码"}
    assert subject(order, "充电器冒烟了") == {"sku": "SKU-40002", "merchant": "m-shuma", "category": "手机数码"}
    assert subject(to_dict(demo("11")), "冒烟了") == {"sku": None, "merchant": None, "category": None}
    assert subject(None, "冒烟了") == {"sku": None, "merchant": None, "category": None}


def test_escalation_events():
    order = to_dict(demo("15"))
    fire = risk_signals.escalation_event("safety", "电饭煲着火了，我电话13800001234", "web", order, CUSTOMER, "T1")
    assert (fire.kind, fire.reason, fire.sku, fire.merchant, fire.category) == (
        "safety", "fire", "SKU-60001", "m-jiadian", "家用电器")
    assert fire.id == "ticket-T1" and fire.ticket == "T1" and fire.customer == pseudonym(CUSTOMER)
    assert "13800001234" not in str(fire.to_fields()) and order["order_id"] not in str(fire.to_fields())
    complaint = risk_signals.escalation_event("complaint", "你们卖假货", "wechat", None, None, "T2")
    assert (complaint.kind, complaint.reason, complaint.sku, complaint.channel) == (
        "complaint", "counterfeit", None, "wechat")
    assert risk_signals.escalation_event("human_request", "转人工", "web", order, None, "T3") is None


def test_one_return_event_per_item():
    order = demo("11")
    events = risk_signals.return_events(order, ["i1", "i3", "nope"], "quality", "web", "R9")
    assert [(e.kind, e.reason, e.sku, e.merchant, e.category, e.id) for e in events] == [
        ("return", "quality", "SKU-10001", "m-huayi", "服装鞋包", "return-R9-i1"),
        ("return", "quality", "SKU-30001", "m-xianguo", "食品生鲜", "return-R9-i3")]


# -- actions against a real Redis -------------------------------------------------------------
@pytest.fixture
async def redis(redis_url, monkeypatch):
    client = aioredis.Redis.from_url(redis_url)
    prefix = f"test:{uuid.uuid4().hex}:"
    monkeypatch.setattr(services, "_redis", lambda: client)
    monkeypatch.setattr(services, "limits_redis", lambda: client)
    monkeypatch.setattr(risk_signals, "PREFIX", prefix)
    client.test_prefix = prefix
    yield client
    await client.close()


@pytest.fixture
async def system(redis, monkeypatch):
    store = RedisOrderSystem(redis, prefix=redis.test_prefix + "orders:")
    await store.save_orders(demo_orders(returns.today()))

    async def order_system():
        return store

    async def customer_of(_tracker):
        return CUSTOMER

    for module in (returns, orders):
        monkeypatch.setattr(module, "order_system", order_system)
        monkeypatch.setattr(module, "customer_of", customer_of)
    monkeypatch.setattr(services, "order_system", order_system)
    return store


async def emitted(redis):
    return [RiskEvent.from_fields(f) for _, f in await redis.xrange(stream_key(redis.test_prefix))]


SENDER = {"id": "s-risk"}


@pytest.fixture(autouse=True)
def fresh_sender():
    """A new conversation per test: the ticket limits per conversation live in the shared Redis."""
    SENDER["id"] = f"s-risk-{uuid.uuid4().hex}"


def tracker(text, slots=None, intent="complain", channel="web", sender=None):
    sender = sender or SENDER["id"]
    latest = {"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": [], "metadata": {}}
    return Tracker(sender, {"requested_slot": None, **(slots or {})}, latest,
                   [{"event": "user", "text": text, "parse_data": latest, "input_channel": channel, "metadata": {}}],
                   False, None, {}, "action_listen")


@pytest.fixture
def tickets(redis, monkeypatch):
    store = TicketStore(redis, prefix=redis.test_prefix + "handoff:")

    async def customer_of(_tracker):
        return CUSTOMER

    async def events(t):
        return list(t.events)

    monkeypatch.setattr(handoff, "tickets", lambda: store)
    monkeypatch.setattr(handoff, "customer_of", customer_of)
    monkeypatch.setattr(handoff, "session_so_far", events)
    return store


async def test_a_safety_ticket_emits_a_safety_event_on_the_named_item(redis, system, tickets):
    order = demo("15")
    dispatcher = CollectingDispatcher()
    t = tracker("我买的电饭煲着火了，厨房都熏黑了", slots={"order_id": order.order_id}, channel="wechat")
    await handoff.ActionEscalate().run(dispatcher, t, {})
    assert dispatcher.messages[0]["response"] == "utter_handoff_urgent"
    [event] = await emitted(redis)
    ticket = await tickets.open_ticket_for(SENDER["id"])
    assert (event.kind, event.reason, event.sku, event.merchant, event.channel, event.ticket) == (
        "safety", "fire", "SKU-60001", "m-jiadian", "wechat", ticket.id)
    assert event.order == pseudonym(order.order_id) and event.customer == pseudonym(CUSTOMER)
    # the same conversation escalating again joins its open ticket: no second signal
    await handoff.ActionEscalate().run(CollectingDispatcher(), t, {})
    assert len(await emitted(redis)) == 1


async def test_a_verified_shoppers_report_without_an_order_finds_the_item_they_bought(redis, system, tickets):
    await handoff.ActionEscalate().run(CollectingDispatcher(), tracker("我上个月买的智能电饭煲冒烟了，差点着火"), {})
    [event] = await emitted(redis)
    assert (event.kind, event.reason, event.sku, event.order) == ("safety", "fire", "SKU-60001",
                                                                 pseudonym(demo("15").order_id))


async def test_a_safety_report_goes_out_even_when_the_orders_cannot_be_read(redis, system, tickets, monkeypatch):
    async def down():
        raise OSError("order system down")

    monkeypatch.setattr(services, "order_system", down)
    await handoff.ActionEscalate().run(CollectingDispatcher(), tracker("电饭煲着火了"), {})
    [event] = await emitted(redis)
    assert (event.kind, event.reason, event.sku) == ("safety", "fire", None)


async def test_a_request_for_a_person_is_no_rights_signal(redis, system, tickets):
    await handoff.ActionEscalate().run(CollectingDispatcher(), tracker("转人工", intent="request_human"), {})
    assert await emitted(redis) == []


async def test_a_low_rating_emits_low_csat_of_the_ticket_category(redis, system, tickets):
    order = demo("12")
    await handoff.ActionEscalate().run(CollectingDispatcher(), tracker("耳机质量太差了，我要投诉，坏了三次",
                                                                       slots={"order_id": order.order_id}), {})
    ticket = await tickets.open_ticket_for(SENDER["id"])
    await tickets.claim(ticket.id, "agent1")
    await tickets.resolve(ticket.id, "agent1")
    rate = tracker("1", intent="rate", slots={"csat": "1"})
    dispatcher = CollectingDispatcher()
    await handoff.ActionStoreRating().run(dispatcher, rate, {})
    assert dispatcher.messages[0]["response"] == "utter_thanks_for_rating"
    complaint, low = await emitted(redis)
    assert (complaint.kind, complaint.reason, complaint.sku) == ("complaint", "quality", "SKU-40001")
    assert (low.kind, low.reason, low.ticket, low.sku, low.merchant) == ("low_csat", "complaint", ticket.id,
                                                                         "SKU-40001", "m-shuma")


async def test_a_good_rating_emits_nothing(redis, system, tickets):
    assert not await risk_signals.rated(tracker("5"), 5, SimpleNamespace(category="complaint"))
    assert not await risk_signals.rated(tracker("1"), 1, None)  # nothing was rated
    assert await emitted(redis) == []


async def test_a_submitted_return_emits_one_event_per_item(redis, system, monkeypatch):
    order = demo("11")
    slots = {"order_id": order.order_id, "return_items": ["i1"], "return_reason": "quality",
             "return_evidence": ["text:裙子开线了，电话13800001234"], "return_confirmed": True,
             "condition_answers": {"complete": True, "tags_intact": True}}
    dispatcher = CollectingDispatcher()
    await returns.ActionSubmitReturn().run(dispatcher, tracker("确认", slots=slots, intent="affirm"), {})
    assert dispatcher.messages[-1]["response"] == "utter_return_created", dispatcher.messages
    [event] = await emitted(redis)
    assert (event.kind, event.reason, event.sku, event.merchant, event.category) == (
        "return", "quality", "SKU-10001", "m-huayi", "服装鞋包")
    assert "开线" in event.excerpt and "13800001234" not in event.excerpt


async def test_delivered_but_not_received_emits_once_per_order(redis, system):
    order = demo("11")
    for _ in range(2):
        dispatcher = CollectingDispatcher()
        t = tracker("显示已签收但我没收到", slots={"order_id": order.order_id}, intent="order_status")
        await orders.ActionOrderStatus().run(dispatcher, t, {})
        assert "utter_delivered_not_received" in [m["response"] for m in dispatcher.messages]
    first, second = await emitted(redis)
    assert first.kind == "not_received" and first.id == second.id  # the worker counts it once
    assert first.merchant is None and first.order == pseudonym(order.order_id)


async def test_a_rights_question_emits_its_entry(redis, system):
    order = demo("15")
    t = tracker("电饭煲能三包吗", slots={"order_id": order.order_id}, intent="ask_rights")
    assert await risk_signals.rights_question(t, "three_guarantees")
    [event] = await emitted(redis)
    assert (event.kind, event.reason, event.sku) == ("rights_question", "three_guarantees", "SKU-60001")


async def test_the_conversation_goes_on_when_redis_is_down(embedded_redis, monkeypatch):
    client = aioredis.Redis.from_url(embedded_redis.url, socket_timeout=1, socket_connect_timeout=1)
    store = RedisOrderSystem(client, prefix="down:")
    await store.save_orders(demo_orders(returns.today()))
    tickets = TicketStore(aioredis.Redis.from_url(embedded_redis.url), prefix="down:")
    order = demo("15")
    slots = {"order_id": order.order_id}
    rate_ticket = SimpleNamespace(category="complaint", evidence={}, summary="", order_id=None, customer=None, id="T9")
    embedded_redis.stop()  # Redis gone for the signal; the order system and tickets are faked below

    async def order_system():
        return SimpleNamespace(order=lambda _id: _async(order), returns_of=lambda _c: _async([]))

    async def customer_of(_tracker):
        return CUSTOMER

    monkeypatch.setattr(services, "_redis", lambda: client)
    for module in (orders, returns):
        monkeypatch.setattr(module, "order_system", order_system)
        monkeypatch.setattr(module, "customer_of", customer_of)
    dispatcher = CollectingDispatcher()
    await orders.ActionOrderStatus().run(dispatcher, tracker("显示签收了但我没收到", slots=slots), {})
    assert "utter_delivered_not_received" in [m["response"] for m in dispatcher.messages]
    assert not await risk_signals.rated(tracker("1"), 1, rate_ticket)
    assert not await risk_signals.rights_question(tracker("能三包吗", slots=slots), "x")
    assert not await risk_signals.escalated(tracker("着火了"), SimpleNamespace(category="safety", customer=None, id="T9"),
                                            "着火了", None)
    await client.close()
    await tickets.close()


async def _async(value):
    return value


async def test_a_failing_signal_helper_never_breaks_an_action(redis, system, tickets, monkeypatch):
    async def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    for helper in ("escalated", "return_submitted", "rated", "rights_question", "not_received"):
        monkeypatch.setattr(risk_signals, helper, broken)
    dispatcher = CollectingDispatcher()
    await orders.ActionOrderStatus().run(dispatcher, tracker("显示签收了但我没收到", slots={"order_id": demo("11").order_id}), {})
    assert "utter_delivered_not_received" in [m["response"] for m in dispatcher.messages]
    dispatcher = CollectingDispatcher()
    await handoff.ActionEscalate().run(dispatcher, tracker("电饭煲着火了"), {})
    assert dispatcher.messages[0]["response"] == "utter_handoff_urgent"
    ticket = await tickets.open_ticket_for(SENDER["id"])
    await tickets.claim(ticket.id, "a")
    await tickets.resolve(ticket.id, "a")
    dispatcher = CollectingDispatcher()
    await handoff.ActionStoreRating().run(dispatcher, tracker("1", intent="rate", slots={"csat": "1"}), {})
    assert dispatcher.messages[0]["response"] == "utter_thanks_for_rating"
