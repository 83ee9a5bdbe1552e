"""Return-form validation with tracker/dispatcher fixtures and a real Redis order store."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis
from rasa_sdk import Tracker

import actions.returns as returns
import actions.services as services
from bot import limits
from actions.returns import ValidateReturnForm
from bot.orders.demo import demo_orders
from bot.orders.redis_store import RedisOrderSystem

CUSTOMER = "c1001"


@pytest.fixture
async def system(redis_url, monkeypatch):
    store = RedisOrderSystem.from_url(redis_url, prefix=f"test:{uuid.uuid4().hex}:")
    await store.save_orders(demo_orders(returns.today()))

    async def order_system():
        return store

    limits_client = aioredis.Redis.from_url(redis_url)
    # The phone-digit limit is per order id, and the demo ids repeat: start every test afresh.
    await limits_client.delete(*(limits.limit_key("verify-order", o.order_id) for o in demo_orders(returns.today())))
    monkeypatch.setattr(returns, "order_system", order_system)
    monkeypatch.setattr(services, "limits_redis", lambda: limits_client)
    yield store
    await store.close()
    await limits_client.close()


def tracker(text, customer=CUSTOMER, slots=None, intent="inform", entities=()):
    async def customer_of(_tracker):
        return customer

    latest = {"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": list(entities), "metadata": {}}
    return Tracker("s1", {"requested_slot": None, **(slots or {})}, latest,
                   [{"event": "user", "text": text, "parse_data": latest}], False, None,
                   {"name": "return_form"}, "action_listen"), customer_of


async def validate(monkeypatch, dispatcher, domain, slot, value, **kwargs):
    t, customer_of = tracker("x", **kwargs)
    monkeypatch.setattr(returns, "customer_of", customer_of)
    return await getattr(ValidateReturnForm(), f"validate_{slot}")(value, dispatcher, t, domain)


async def test_own_order_is_accepted(system, monkeypatch, dispatcher, domain):
    own = (await system.orders_of(CUSTOMER))[0].order_id
    assert await validate(monkeypatch, dispatcher, domain, "order_id", own) == {"order_id": own}
    assert dispatcher.messages == []


async def test_other_customers_order_looks_exactly_like_an_unknown_one(system, monkeypatch, dispatcher, domain):
    theirs = (await system.orders_of("c1002"))[0].order_id
    result_theirs = await validate(monkeypatch, dispatcher, domain, "order_id", theirs)
    result_unknown = await validate(monkeypatch, dispatcher, domain, "order_id", "2099010100000000")
    assert result_theirs == result_unknown == {"order_id": None, "form_failures": 1}
    assert [m["response"] for m in dispatcher.messages] == ["utter_order_not_found"] * 2


async def test_anonymous_order_number_is_kept_until_phone_digits_are_checked(system, monkeypatch, dispatcher, domain):
    assert await validate(monkeypatch, dispatcher, domain, "order_id", "2099010100000000", customer=None) == {
        "order_id": "2099010100000000"}


async def test_right_phone_digits_verify_the_order(system, monkeypatch, dispatcher, domain):
    order = (await system.orders_of(CUSTOMER))[0]
    result = await validate(monkeypatch, dispatcher, domain, "phone_last4", order.phone[-4:],
                            customer=None, slots={"order_id": order.order_id})
    assert result == {"phone_last4": order.phone[-4:], "verified_order_ids": [order.order_id]}


async def test_wrong_digits_ask_the_digits_again_and_a_second_failure_hands_over(system, monkeypatch, dispatcher, domain):
    order = (await system.orders_of(CUSTOMER))[0]
    first = await validate(monkeypatch, dispatcher, domain, "phone_last4", "0000", customer=None,
                           slots={"order_id": order.order_id})
    assert first == {"phone_last4": None, "form_failures": 1}  # the order number is kept
    second = await validate(monkeypatch, dispatcher, domain, "phone_last4", "0000", customer=None,
                            slots={"order_id": order.order_id, "form_failures": 1})
    assert second["form_failures"] == 2
    assert [m["response"] for m in dispatcher.messages] == ["utter_phone_last4_wrong", "utter_form_handover"]


async def test_wrong_digits_read_the_same_for_a_real_and_an_unknown_order(system, monkeypatch, dispatcher, domain):
    order = (await system.orders_of(CUSTOMER))[0]
    real = await validate(monkeypatch, dispatcher, domain, "phone_last4", "0000", customer=None,
                          slots={"order_id": order.order_id})
    unknown = await validate(monkeypatch, dispatcher, domain, "phone_last4", "0000", customer=None,
                             slots={"order_id": "2099010100000000"})
    assert real == unknown and dispatcher.messages[0] == dispatcher.messages[1]


async def test_a_one_word_description_is_not_enough_evidence(system, monkeypatch, dispatcher, domain):
    assert await validate(monkeypatch, dispatcher, domain, "return_evidence", ["text:坏"]) == {
        "return_evidence": None, "form_failures": 1}
    photo = f"photo:https://x/uploads/{uuid.uuid4().hex}.jpg"  # an upload of this conversation
    await limits.record_upload(services.limits_redis(), photo.rsplit("/", 1)[1], "s1")
    assert await validate(monkeypatch, dispatcher, domain, "return_evidence", [photo]) == {"return_evidence": [photo]}


async def test_items_are_read_from_names_and_ordinals(system, monkeypatch, dispatcher, domain):
    order = next(o for o in await system.orders_of(CUSTOMER) if o.order_id.endswith("11"))
    for text, expected in [("连衣裙", ["i1"]), ("第二件", ["i2"]), ("全部都退", ["i1", "i2", "i3"])]:
        t, customer_of = tracker(text, slots={"order_id": order.order_id, "requested_slot": "return_items"})
        monkeypatch.setattr(returns, "customer_of", customer_of)
        assert await ValidateReturnForm().extract_return_items(dispatcher, t, domain) == {"return_items": expected}


async def test_reason_keywords_in_free_text(system, monkeypatch, dispatcher, domain):
    for text, reason in [("收到就是坏的", "quality"), ("发错颜色了", "wrong_item"), ("就是不喜欢", "no_reason")]:
        t, _ = tracker(text, slots={"requested_slot": "return_reason"})
        assert await ValidateReturnForm().extract_return_reason(dispatcher, t, domain) == {"return_reason": reason}


async def test_an_order_system_outage_gets_an_apology_not_an_error(embedded_redis, monkeypatch, dispatcher, domain):
    store = RedisOrderSystem.from_url(embedded_redis.url)
    await store.save_orders(demo_orders(returns.today()))
    order_id = (await store.orders_of(CUSTOMER))[0].order_id

    async def order_system():
        return store

    monkeypatch.setattr(returns, "order_system", order_system)
    t, customer_of = tracker("x", slots={"order_id": order_id, "requested_slot": "return_items"})
    monkeypatch.setattr(returns, "customer_of", customer_of)
    embedded_redis.stop()
    events = await returns.ActionAskReturnItems().run(dispatcher, t, domain)
    assert [m["response"] for m in dispatcher.messages] == ["utter_order_system_down"]
    assert events == [{"event": "slot", "timestamp": None, "name": "return_items", "value": None}]
    await store.close()


# -- issue 14: gifts asked separately, the shopper's first notice counts ----------------------
async def test_the_gift_is_asked_separately_and_a_missing_gift_still_allows_the_return(system, monkeypatch, dispatcher, domain):
    order = next(o for o in await system.orders_of(CUSTOMER) if o.order_id.endswith("14"))
    assert returns.pending_condition_keys(order, ["i2"], {}) == ["complete", "not_activated", "gift_kept"]
    slots = {"order_id": order.order_id, "return_items": ["i2"], "return_reason": "no_reason",
             "condition_answers": {"complete": True, "not_activated": True}}
    t, customer_of = tracker("x", slots=slots)
    monkeypatch.setattr(returns, "customer_of", customer_of)
    await returns.ActionAskGoodsCondition().run(dispatcher, t, domain)
    assert "赠品" in dispatcher.messages[-1]["question"]
    allowed, refused = returns.summary(order, ["i2"], "no_reason",
                                       {"complete": True, "not_activated": True, "gift_kept": False})
    assert not refused and "鼠标垫" in allowed[0].explanation and "¥19" in allowed[0].explanation


async def test_a_return_asked_for_within_the_window_stays_allowed_after_it(system, monkeypatch, dispatcher, domain):
    import dataclasses
    import datetime as dt

    from bot.orders.models import ReturnRequest

    late = next(o for o in await system.orders_of(CUSTOMER) if o.order_id.endswith("13"))  # signed 8 days ago
    intact = {"complete": True, "tags_intact": True}
    assert returns.summary(late, ["i1"], "no_reason", intact, await returns.notice_date(late))[1][0].outcome == "window_passed"
    first_asked = late.signed_at + dt.timedelta(days=5)

    async def returns_of(customer_id):
        return [ReturnRequest("R1", late.order_id, CUSTOMER, ("i1",), "no_reason", "return", "closed", first_asked)]

    monkeypatch.setattr(system, "returns_of", returns_of)
    notice = await returns.notice_date(late)
    assert notice == first_asked.date()
    allowed, refused = returns.summary(late, ["i1"], "no_reason", intact, notice)
    assert allowed and not refused

    recorded = dataclasses.replace(late, return_notice_at=first_asked)
    monkeypatch.setattr(system, "returns_of", lambda customer_id: _no_returns())
    assert await returns.notice_date(recorded) == first_asked.date()


async def _no_returns():
    return []


async def test_a_window_ending_on_a_holiday_goes_to_a_colleague(system, monkeypatch, dispatcher, domain):
    import dataclasses
    import datetime as dt

    from bot.orders.models import SHANGHAI

    base = next(o for o in await system.orders_of(CUSTOMER) if o.order_id.endswith("13"))
    order = dataclasses.replace(base, order_id="2026092200000099",
                                signed_at=dt.datetime(2026, 9, 24, 12, tzinfo=SHANGHAI))  # day 7: 10月1日
    await system.save_orders([order])
    monkeypatch.setattr(returns, "today", lambda: dt.date(2026, 10, 3))
    slots = {"order_id": order.order_id, "return_items": ["i1"], "return_reason": "no_reason",
             "condition_answers": {"complete": True, "tags_intact": True}, "return_confirmed": None}
    t, customer_of = tracker("x", slots=slots)
    monkeypatch.setattr(returns, "customer_of", customer_of)
    events = await returns.ActionSubmitReturn().run(dispatcher, t, domain)
    assert "同事" in dispatcher.messages[0]["explanation"] and "第二百零三条" in dispatcher.messages[0]["citation"]
    assert events[-1] == {"event": "followup", "timestamp": None, "name": "action_escalate"}


# -- issue 16: the right order, switching orders, the refund and the parcel said out loud ---------
def by_suffix(orders, suffix):
    return next(o for o in orders if o.order_id.endswith(suffix))


def slot_values(events):
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


async def choose(monkeypatch, dispatcher, text, slots, customer=CUSTOMER, intent="request_return"):
    t, customer_of = tracker(text, customer=customer, slots=slots, intent=intent)
    monkeypatch.setattr(returns, "customer_of", customer_of)
    return slot_values(await ValidateReturnForm().choose_order(dispatcher, t))


async def test_a_tracked_parcel_is_not_assumed_when_the_shopper_has_several_orders(system, monkeypatch, dispatcher):
    shipped = by_suffix(await system.orders_of(CUSTOMER), "16")
    chosen = await choose(monkeypatch, dispatcher, "我要退货", {"order_id": shipped.order_id})
    assert chosen["order_id"] is None and chosen["return_items"] is None


async def test_naming_an_item_picks_the_order_that_holds_it(system, monkeypatch, dispatcher):
    orders = await system.orders_of(CUSTOMER)
    chosen = await choose(monkeypatch, dispatcher, "耳机也想退", {"order_id": by_suffix(orders, "16").order_id})
    assert chosen["order_id"] == by_suffix(orders, "12").order_id and chosen["return_items"] == ["i1"]
    # at the item step of another order, too
    inside = await choose(monkeypatch, dispatcher, "耳机", {"order_id": by_suffix(orders, "11").order_id,
                                                          "requested_slot": "return_items"}, intent="inform")
    assert inside["order_id"] == by_suffix(orders, "12").order_id
    # an item of the current order at the item step is the usual answer
    assert await choose(monkeypatch, dispatcher, "连衣裙", {"order_id": by_suffix(orders, "11").order_id,
                                                          "requested_slot": "return_items"}, intent="inform") == {}


async def test_not_this_order_switches_and_keeps_the_reason(system, monkeypatch, dispatcher):
    orders = await system.orders_of(CUSTOMER)
    current = by_suffix(orders, "11").order_id
    chosen = await choose(monkeypatch, dispatcher, "不是这单", {"order_id": current, "requested_slot": "return_confirmed",
                                                           "return_reason": "no_reason", "return_items": ["i1"]},
                          intent="switch_order")
    assert chosen["order_id"] is None and chosen["return_items"] is None and "return_reason" not in chosen
    assert current not in chosen["order_choices"]
    assert [m["response"] for m in dispatcher.messages] == ["utter_switch_order"]


async def test_the_order_question_comes_with_order_cards_and_text_buttons(system, monkeypatch, dispatcher, domain):
    t, customer_of = tracker("我要退货")
    monkeypatch.setattr(returns, "customer_of", customer_of)
    await returns.ActionAskOrderId().run(dispatcher, t, domain)
    (message,) = dispatcher.messages
    cards = message["custom"]["orders"]
    assert message["custom"]["type"] == "order_cards"
    assert [c["payload"] for c in cards] == [b["payload"] for b in message["buttons"]]
    headphones = next(c for c in cards if c["order_id"].endswith("12"))
    assert headphones["status_label"] == "已签收" and headphones["total"] == 998.0
    assert headphones["items"][0] == {"name": "降噪蓝牙耳机", "sku": "SKU-40001", "price": 899.0, "quantity": 1}


async def test_the_summary_shows_the_refund_amount(system, monkeypatch, dispatcher, domain):
    order = by_suffix(await system.orders_of(CUSTOMER), "12")
    slots = {"order_id": order.order_id, "return_items": ["i1"], "return_reason": "no_reason",
             "condition_answers": {"complete": True, "not_activated": True}}
    t, customer_of = tracker("x", slots=slots)
    monkeypatch.setattr(returns, "customer_of", customer_of)
    await returns.ActionAskReturnConfirmed().run(dispatcher, t, domain)
    refund = dispatcher.messages[-1]["refund"]
    assert "¥899.00" in refund and "寄回运费由您承担" in refund


async def test_one_item_of_a_parcel_in_transit_says_the_whole_parcel_is_intercepted(system, monkeypatch, dispatcher, domain):
    order = by_suffix(await system.orders_of(CUSTOMER), "16")
    slots = {"order_id": order.order_id, "return_items": ["i2"], "return_reason": "no_reason"}
    t, customer_of = tracker("x", slots=slots)
    monkeypatch.setattr(returns, "customer_of", customer_of)
    await returns.ActionAskReturnConfirmed().run(dispatcher, t, domain)
    message = dispatcher.messages[-1]
    assert message["response"] == "utter_ask_confirm_intercept"
    assert message["chosen"] == "羊毛围巾" and message["others"] == "轻薄羽绒服" and "¥858.00" in message["refund"]


def test_questions_are_told_from_requests():
    assert returns.is_question("收到5天了能退吗") and returns.is_question("买了三天还可以退货吗？")
    assert not returns.is_question("我要退货") and not returns.is_question("耳机也想退")
    assert not returns.is_question("能帮我退一下吗") and not returns.is_question("/request_return")


async def test_a_stale_button_inside_the_form_is_refused_and_the_question_asked_again(system, monkeypatch, dispatcher, domain):
    order = by_suffix(await system.orders_of(CUSTOMER), "16")
    headphones = by_suffix(await system.orders_of(CUSTOMER), "12")
    forged = returns.inform_payload(order_id=headphones.order_id)
    latest = {"text": forged, "intent": {"name": "inform", "confidence": 1.0},
              "entities": [{"entity": "order_id", "value": headphones.order_id}], "metadata": {}}
    events = [{"event": "slot", "name": "order_id", "value": order.order_id},
              {"event": "bot", "text": "确认要拦截整个包裹吗？", "data": {"buttons": [
                  {"title": "确认拦截整个包裹", "payload": "/affirm"}, {"title": "先不拦截", "payload": "/stop"}]}},
              {"event": "user", "text": forged, "parse_data": latest},
              {"event": "slot", "name": "order_id", "value": headphones.order_id}]  # the slot mapping ran
    t = Tracker("s1", {"requested_slot": "return_confirmed", "order_id": headphones.order_id}, latest, events,
                False, None, {"name": "return_form"}, "action_listen")
    result = await ValidateReturnForm().run(dispatcher, t, domain)
    assert [m["response"] for m in dispatcher.messages] == ["utter_button_expired"]
    assert slot_values(result) == {"order_id": order.order_id, "return_confirmed": None,
                                   "requested_slot": "return_confirmed"}


async def test_a_question_that_opens_the_form_is_answered_and_the_form_ends(system, monkeypatch, dispatcher, domain):
    t, customer_of = tracker("收到5天了能退吗", customer=None, intent="request_return")
    monkeypatch.setattr(returns, "customer_of", customer_of)
    events = await ValidateReturnForm().run(dispatcher, t, domain)
    responses = [m["response"] for m in dispatcher.messages]
    assert responses[0] == "utter_rights_answer" and responses[-1] == "utter_offer_request_return"
    assert "utter_ask_order_id_number" not in responses
    assert {"event": "active_loop", "timestamp": None, "name": None} in events
