"""Returns and order lookups end to end: REST -> Rasa -> actions -> embedded order system."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import redis

from bot.identity import sign_customer_token
from bot.orders.demo import demo_orders
from bot.orders.models import SHANGHAI
from tests.integration.conftest import SIGNING_SECRET, matches_response

pytestmark = pytest.mark.integration


def orders():
    return {o.order_id[-2:]: o for o in demo_orders(dt.datetime.now(SHANGHAI).date())}


class Shopper:
    def __init__(self, stack, customer=None):
        self.stack, self.sender = stack, f"shopper-{uuid.uuid4().hex[:10]}"
        self.metadata = {"customer_token": sign_customer_token(customer, SIGNING_SECRET)} if customer else {}

    def say(self, text, **metadata):
        return self.stack.send(self.sender, text, metadata={**self.metadata, **metadata} or None)

    def texts(self, text, **metadata):
        return [m.get("text", "") for m in self.say(text, **metadata)]


def button(messages, title_part):
    return next(b["payload"] for m in messages for b in m.get("buttons", []) if title_part in b["title"])


def start_return(shopper, order, item_name, reason_title):
    picked = shopper.say("我要退货")
    assert matches_response(picked[0]["text"], "utter_ask_pick_order")
    offered = [b["payload"] for m in picked for b in m.get("buttons", []) if order.order_id in b["title"]]
    items = shopper.say(offered[0] if offered else f"订单号是{order.order_id}")  # older orders: typed
    assert matches_response(items[0]["text"], "utter_ask_pick_items")
    reasons = shopper.say(button(items, item_name))
    assert matches_response(reasons[0]["text"], "utter_ask_return_reason")
    return shopper.say(button(reasons, reason_title))


def test_happy_no_reason_return_then_an_idempotent_retry(stack):
    order = orders()["11"]
    shopper = Shopper(stack, "c1001")
    first_question = start_return(shopper, order, "连衣裙", "七天无理由")
    assert "齐全" in first_question[0]["text"]
    assert "吊牌" in shopper.say("/affirm")[0]["text"]
    (confirm,) = shopper.say("/affirm")
    deadline = (order.signed_at.date() + dt.timedelta(days=7))
    assert f"七日无理由退货期限至{deadline.month}月{deadline.day}日" in confirm["text"]
    assert "《中华人民共和国消费者权益保护法》第二十五条" in confirm["text"]
    created = shopper.say("确认提交")
    payload = next(m["custom"] for m in created if "custom" in m)
    assert payload["type"] == "return_request" and payload["items"] == ["i1"]
    assert created[0]["text"].startswith(f"✅ 已为您提交申请，编号 {payload['return_id']}")
    assert "寄回运费由您承担" in created[0]["text"]

    again = Shopper(stack, "c1001")  # the same submit again, from a fresh conversation
    start_return(again, order, "连衣裙", "七天无理由")
    again.say("/affirm")
    again.say("/affirm")
    repeated = again.texts("/affirm")
    assert any(payload["return_id"] in t and "不用重复提交" in t for t in repeated)


def test_excluded_category_is_refused_with_the_statute(stack):
    shopper = Shopper(stack, "c1001")
    replies = start_return(shopper, orders()["11"], "车厘子", "七天无理由")
    text = "\n".join(m.get("text", "") for m in replies)
    assert "鲜活易腐" in text and "《网络购买商品七日无理由退货暂行办法》第六条" in text
    assert not any("编号 R" in m.get("text", "") for m in replies)


def test_day_seven_is_in_and_day_eight_is_out(stack):
    day7 = Shopper(stack, "c1001")
    start_return(day7, orders()["12"], "耳机", "七天无理由")
    day7.say("/affirm")
    (confirm,) = day7.say("/affirm")
    today = dt.datetime.now(SHANGHAI).date()
    assert f"期限至{today.month}月{today.day}日，现在还在期限内" in confirm["text"]

    day8 = Shopper(stack, "c1001")
    refused = start_return(day8, orders()["13"], "运动鞋", "七天无理由")
    assert "已于" in refused[0]["text"] and "届满" in refused[0]["text"]


def test_quality_return_stores_the_photo_evidence(stack):
    shopper = Shopper(stack, "c1001")
    asked = start_return(shopper, orders()["15"], "电饭煲", "质量问题")
    assert matches_response(asked[0]["text"], "utter_ask_return_evidence")
    # A photo the web app stored for this conversation (bot.webchat.routes records each upload).
    photo = f"http://127.0.0.1/uploads/{uuid.uuid4().hex}.jpg"
    redis.Redis.from_url(stack.redis_url).set("xb:upload:" + photo.rsplit("/", 1)[1], shopper.sender)
    (confirm,) = shopper.say("", attachments=[photo])
    assert "更换或修理" in confirm["text"] and "第二十四条" in confirm["text"]
    created = shopper.say("/affirm")
    assert any("编号 R" in m.get("text", "") for m in created)


def test_cancelling_mid_form_submits_nothing(stack):
    shopper = Shopper(stack, "c1001")
    shopper.say("我要退货")
    (reply,) = shopper.say("算了 不退了")
    assert matches_response(reply["text"], "utter_return_cancelled")
    assert matches_response(shopper.say("你好")[0]["text"], "utter_greet")


def test_a_rights_question_inside_the_form_is_answered_and_the_form_resumes(stack):
    shopper = Shopper(stack, "c1001")
    picked = shopper.say("我要退货")
    items = shopper.say(button(picked, orders()["11"].order_id))
    replies = shopper.say("对了先问一下，买到假货能要求退一赔三吗")
    assert any((m.get("custom") or {}).get("type") == "rights_answer" for m in replies)
    assert matches_response(replies[-1]["text"], "utter_ask_pick_items")
    assert items


def test_someone_elses_order_gets_the_same_reply_as_an_unknown_one(stack):
    theirs = orders()["21"].order_id  # belongs to c1002
    shopper = Shopper(stack, "c1001")
    shopper.say("我要退货")
    other = shopper.texts(f"订单号{theirs}")
    unknown = Shopper(stack, "c1001")
    unknown.say("我要退货")
    missing = unknown.texts("订单号2099010100000000")
    assert other[0] == missing[0]
    assert matches_response(other[0], "utter_order_not_found")


def test_malformed_order_number_is_explained(stack):
    shopper = Shopper(stack)
    shopper.say("我要退货")
    assert matches_response(shopper.texts("订单号是12345")[0], "utter_order_id_malformed")


def test_anonymous_shopper_verifies_with_phone_digits(stack):
    order = orders()["11"]
    shopper = Shopper(stack)
    assert matches_response(shopper.texts("我要退货")[0], "utter_ask_order_id_number")
    assert matches_response(shopper.texts(order.order_id)[0], "utter_ask_phone_last4")
    assert matches_response(shopper.texts("0000")[0], "utter_phone_last4_wrong")  # the order number is kept
    replies = shopper.say(order.phone[-4:])
    assert matches_response(replies[0]["text"], "utter_ask_pick_items")


def test_order_lookup_shows_logistics_and_offers_a_complaint_when_not_received(stack):
    shopper = Shopper(stack, "c1001")
    listing = shopper.say("我的快递到哪了")
    shipped = orders()["16"]
    detail = shopper.say(button(listing, "运输中"))
    assert detail[0]["text"].startswith(f"订单 {shipped.order_id}") and "揽收" in detail[0]["text"]
    delivered = orders()["11"].order_id
    replies = shopper.texts(f"订单{delivered}显示签收了但我根本没收到")
    assert any("已签收" in t for t in replies)
    assert any(matches_response(t, "utter_offer_complain") for t in replies)


def test_return_status_is_listed(stack):
    shopper = Shopper(stack, "c1002")
    start_return(shopper, orders()["21"], "键盘", "质量问题")
    shopper.say("按键失灵，好几个键按下去没反应")
    shopper.say("/affirm")
    replies = shopper.texts("我的退货到哪了")
    assert "售后申请进度" in replies[0] and orders()["21"].order_id in replies[0]


def test_a_form_step_failing_twice_hands_over_to_a_person(stack):
    import asyncio

    from tests.integration.conftest import stored_open_ticket

    shopper = Shopper(stack, "c1001")
    shopper.say("我要退货")
    assert matches_response(shopper.texts("订单号2099010100000000")[0], "utter_order_not_found")
    texts = shopper.texts("订单号2099010100000001")
    assert matches_response(texts[0], "utter_form_handover") and any("工单号" in t for t in texts)
    ticket = asyncio.run(stored_open_ticket(stack.redis_url, sender=shopper.sender))
    assert ticket.category == "bot_failed"
