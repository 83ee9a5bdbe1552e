"""Proactive safety warnings (bot.risk.warnings) against a real Redis, a fake Rasa HTTP API and a
fake WeChat API, both real aiohttp servers on loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
import subprocess
import sys
import time
import uuid

import pytest
from aiohttp import web

from bot.channels.wechat.client import WeChatApi
from bot.orders.demo import demo_orders
from bot.orders.redis_store import RedisOrderSystem
from bot.paths import ROOT
from bot.rasa_api import RasaApi
from bot.redis_url import async_redis
from bot.risk.alerts import Alert
from bot.risk.contacts import ContactBook
from bot.risk.warnings import (THING_CHARS, ShopperWarnings, load_warning_texts, risk_of, shopper_warnings_for,
                               subscribe_fields, warning_text)
from tests.channels.fake_wechat import FakeWeChat

TODAY = dt.date(2026, 11, 28)
SKU, PRODUCT = "SKU-60001", "智能电饭煲"  # bought by demo customer c1001
RASA_TOKEN = "rasa-test-token"
TEMPLATE = "tmpl-safety-1"


class FakeRasa:
    """Rasa's HTTP API as far as warnings use it: appended events, per conversation."""

    def __init__(self) -> None:
        self.events = {}
        self.params = {}
        self.failing = set()  # conversations whose append answers HTTP 500
        self.delay_s = 0.0

    def app(self) -> web.Application:
        async def append(request: web.Request) -> web.Response:
            if request.query.get("token") != RASA_TOKEN:
                raise web.HTTPUnauthorized()
            await asyncio.sleep(self.delay_s)
            sender = request.match_info["sender"]
            if sender in self.failing:
                raise web.HTTPInternalServerError()
            self.events.setdefault(sender, []).extend(await request.json())
            self.params.setdefault(sender, []).append(dict(request.query))
            return web.json_response({})

        app = web.Application()
        app.add_routes([web.post("/conversations/{sender}/tracker/events", append)])
        return app

    def texts(self, sender: str):
        return [e["text"] for e in self.events.get(sender, []) if e["event"] == "bot"]


class SubscribingWeChat(FakeWeChat):
    """The fake WeChat API plus subscribeMessage.send."""

    def __init__(self) -> None:
        super().__init__()
        self.subscribed = []
        self.subscribe_errors = []

    def app(self) -> web.Application:
        async def subscribe(request: web.Request) -> web.Response:
            if request.query.get("access_token") not in self.valid_tokens:
                return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
            if self.subscribe_errors:
                return web.json_response({"errcode": self.subscribe_errors.pop(0), "errmsg": "scripted"})
            self.subscribed.append(await request.json())
            return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": 1})

        app = super().app()
        app.router.add_post("/cgi-bin/message/subscribe/send", subscribe)
        return app


def safety_alert(sku=SKU, reason="fire", safety=True, confirmed_by="supervisor1") -> Alert:
    return Alert(id=f"R20261128{uuid.uuid4().hex[:6]}", key=f"sku:{sku}|safety:{reason}", dimension="sku",
                 value=sku or "m-jiadian", kind="safety", reason=reason, severity="urgent", status="acknowledged",
                 assignee=None, created_at="2026-11-28T10:00:00+08:00", updated_at="2026-11-28T10:05:00+08:00",
                 observed=1, expected=0.0, ratio=0.0, window_h=72, rule="安全事件：一起起火报告，立即预警",
                 sku=sku, merchant="m-jiadian", category="家用电器", safety=safety, confirmed_by=confirmed_by)


@pytest.fixture
async def env(redis_url, aiohttp_server):
    prefix = f"test:{uuid.uuid4().hex}:"
    redis = async_redis(redis_url)
    orders = RedisOrderSystem(redis, prefix=prefix + "oms:")
    demo = demo_orders(TODAY)
    cooker = next(o for o in demo if o.customer_id == "c1001" and any(i.sku == SKU for i in o.items))
    second = dataclasses.replace(cooker, order_id="2026112000000099", customer_id="c1002")
    await orders.save_orders(demo + [second])
    rasa = FakeRasa()
    rasa_url = str((await aiohttp_server(rasa.app())).make_url(""))
    wechat = SubscribingWeChat()
    wechat_url = str((await aiohttp_server(wechat.app())).make_url(""))
    contacts = ContactBook(redis, prefix=prefix)
    clients = []

    def warnings(template_id=None, **options) -> ShopperWarnings:
        rasa_api = RasaApi(rasa_url, RASA_TOKEN, timeout_s=3)
        wechat_api = WeChatApi(wechat_url, "wxappid", "secret", redis, backoff_s=0.01)
        clients.extend([rasa_api, wechat_api])
        return ShopperWarnings(redis, orders, rasa_api, wechat_api, prefix=prefix, template_id=template_id,
                               **options)

    yield {"redis": redis, "rasa": rasa, "wechat": wechat, "contacts": contacts, "warnings": warnings,
           "prefix": prefix, "orders": orders, "rasa_url": rasa_url, "wechat_url": wechat_url, "clients": clients}
    for client in clients:
        await client.close()
    await redis.delete("xb:wechat:access_token")
    await redis.close()


async def seen(env, customer, conversation, channel, ago_s=60.0):
    await env["contacts"].remember(customer, conversation, channel, at=time.time() - ago_s)


async def test_two_buyers_in_web_chat_each_get_exactly_one_warning(env):
    await seen(env, "c1001", "web:aaaaaaaaaaaaaaaa", "web")
    await seen(env, "c1002", "shopper-rest-2", "rest")
    alert = safety_alert()
    summary = await env["warnings"]().warn_for_alert(alert, "supervisor1")
    assert (summary["sent"], summary["already"], summary["unreachable"], summary["failed"], summary["buyers"]) == (2, 0, 0, 0, 2)
    for conversation in ("web:aaaaaaaaaaaaaaaa", "shopper-rest-2"):
        [text] = env["rasa"].texts(conversation)
        assert PRODUCT in text and SKU not in text and "停止使用" in text and "就医" in text
        [event] = env["rasa"].events[conversation]
        assert event["metadata"] == {"sent_by": "system", "risk_alert": alert.id}
        assert env["rasa"].params[conversation][0]["output_channel"] == "latest"  # delivered, not only recorded
    records = await env["warnings"]().deliveries(alert.id)
    assert [(r["customer_id"], r["status"], r["channel"], r["conversation_id"], r["by"]) for r in records] == [
        ("c1001", "sent", "web", "web:aaaaaaaaaaaaaaaa", "supervisor1"),
        ("c1002", "sent", "rest", "shopper-rest-2", "supervisor1")]
    assert all(r["product"] == PRODUCT and r["attempts"] == 1 for r in records)


async def test_confirming_again_sends_nothing_more(env):
    await seen(env, "c1001", "web:aaaaaaaaaaaaaaaa", "web")
    await seen(env, "c1002", "web:bbbbbbbbbbbbbbbb", "web")
    alert = safety_alert()
    await env["warnings"]().warn_for_alert(alert, "supervisor1")
    again = await env["warnings"]().warn_for_alert(alert, "supervisor2")
    assert (again["sent"], again["already"]) == (0, 2)
    assert [len(env["rasa"].texts(c)) for c in ("web:aaaaaaaaaaaaaaaa", "web:bbbbbbbbbbbbbbbb")] == [1, 1]
    other = await env["warnings"]().warn_for_alert(safety_alert(), "supervisor1")  # another alert: warned again
    assert other["sent"] == 2


async def test_two_supervisors_confirming_at_once_on_two_replicas_send_one_each(env):
    await seen(env, "c1001", "web:aaaaaaaaaaaaaaaa", "web")
    await seen(env, "c1002", "web:bbbbbbbbbbbbbbbb", "web")
    env["rasa"].delay_s = 0.2  # both replicas are mid-send at the same time
    alert = safety_alert()
    first, second = await asyncio.gather(env["warnings"]().warn_for_alert(alert, "supervisor1"),
                                         env["warnings"]().warn_for_alert(alert, "supervisor2"))
    assert first["sent"] + second["sent"] == 2 and first["already"] + second["already"] == 2
    assert [len(env["rasa"].texts(c)) for c in ("web:aaaaaaaaaaaaaaaa", "web:bbbbbbbbbbbbbbbb")] == [1, 1]


async def test_a_failed_send_is_retried_once_later_and_a_sent_one_never(env):
    await seen(env, "c1001", "web:aaaaaaaaaaaaaaaa", "web")
    await seen(env, "c1002", "web:bbbbbbbbbbbbbbbb", "web")
    env["rasa"].failing.add("web:bbbbbbbbbbbbbbbb")
    alert = safety_alert()
    summary = await env["warnings"]().warn_for_alert(alert, "supervisor1")
    assert (summary["sent"], summary["failed"]) == (1, 1)
    failed = next(r for r in await env["warnings"]().deliveries(alert.id) if r["customer_id"] == "c1002")
    assert failed["status"] == "failed" and "500" in failed["error"]
    env["rasa"].failing.clear()  # Rasa recovers; the supervisor confirms again
    retry = await env["warnings"]().warn_for_alert(alert, "supervisor1")
    assert (retry["sent"], retry["already"], retry["failed"]) == (1, 1, 0)
    assert [len(env["rasa"].texts(c)) for c in ("web:aaaaaaaaaaaaaaaa", "web:bbbbbbbbbbbbbbbb")] == [1, 1]
    third = await env["warnings"]().warn_for_alert(alert, "supervisor1")
    assert (third["sent"], third["already"]) == (0, 2)
    records = {r["customer_id"]: r for r in await env["warnings"]().deliveries(alert.id)}
    assert (records["c1002"]["status"], records["c1002"]["attempts"]) == ("sent", 2)
    assert records["c1001"]["attempts"] == 1


async def test_a_buyer_never_seen_in_a_chat_is_unreachable_and_listed(env):
    await seen(env, "c1001", "web:aaaaaaaaaaaaaaaa", "web")
    alert = safety_alert()
    summary = await env["warnings"]().warn_for_alert(alert, "supervisor1")
    assert (summary["sent"], summary["unreachable"], summary["buyers"]) == (1, 1, 2)
    records = {r["customer_id"]: r for r in await env["warnings"]().deliveries(alert.id)}
    assert set(records) == {"c1001", "c1002"}  # every buyer is in the record
    assert (records["c1002"]["status"], records["c1002"]["error"], records["c1002"]["conversation_id"]) == (
        "unreachable", "no_conversation", None)
    assert records["c1002"]["tried"] == []  # a list, still, after the finishing script
    await seen(env, "c1002", "web:bbbbbbbbbbbbbbbb", "web", ago_s=1)  # the shopper chats later
    later = await env["warnings"]().warn_for_alert(alert, "supervisor1")
    assert (later["sent"], later["already"], later["unreachable"]) == (1, 1, 0)


async def test_wechat_with_a_template_sends_a_subscribe_message_to_the_openid(env):
    await seen(env, "c1001", "wx:oShopperOne", "wechat")
    alert = safety_alert()
    summary = await env["warnings"](template_id=TEMPLATE).warn_for_alert(alert, "supervisor1")
    assert (summary["sent"], summary["unreachable"]) == (1, 1)  # c1002 was never seen
    [request] = env["wechat"].subscribed
    assert (request["touser"], request["template_id"]) == ("oShopperOne", TEMPLATE)
    assert request["data"]["thing1"] == {"value": PRODUCT} and "起火" in request["data"]["thing2"]["value"]
    assert alert.id in request["page"]
    assert env["wechat"].sent == []  # no customer-service message on top
    # In the transcript for agents, recorded but not delivered a second time.
    assert env["rasa"].texts("wx:oShopperOne") and "output_channel" not in env["rasa"].params["wx:oShopperOne"][0]
    [record] = [r for r in await env["warnings"]().deliveries(alert.id) if r["customer_id"] == "c1001"]
    assert (record["status"], record["channel"], record["conversation_id"]) == ("sent", "wechat", "wx:oShopperOne")


async def test_wechat_without_consent_to_the_template_falls_back_to_a_chat_message(env):
    await seen(env, "c1001", "wx:oShopperOne", "wechat")
    env["wechat"].subscribe_errors = [43101]
    summary = await env["warnings"](template_id=TEMPLATE).warn_for_alert(safety_alert(), "supervisor1")
    assert summary["sent"] == 1
    [text] = env["wechat"].texts_to("oShopperOne")
    assert PRODUCT in text


async def test_wechat_outside_the_48h_window_is_unreachable_not_failed_and_retried_later(env):
    await seen(env, "c1001", "wx:oShopperOne", "wechat")
    env["wechat"].scripted_errors = [45015]
    alert = safety_alert()
    summary = await env["warnings"]().warn_for_alert(alert, "supervisor1")
    assert (summary["sent"], summary["unreachable"], summary["failed"]) == (0, 2, 0)
    [record] = [r for r in await env["warnings"]().deliveries(alert.id) if r["customer_id"] == "c1001"]
    assert record["status"] == "unreachable" and "45015" in record["error"]
    assert env["wechat"].sent == []
    again = await env["warnings"]().warn_for_alert(alert, "supervisor1")  # the shopper wrote again meanwhile
    assert again["sent"] == 1 and len(env["wechat"].texts_to("oShopperOne")) == 1


async def test_the_most_recent_conversation_that_takes_the_warning_is_the_only_one(env):
    await seen(env, "c1001", "web:aaaaaaaaaaaaaaaa", "web", ago_s=3600)
    await seen(env, "c1001", "wx:oShopperOne", "wechat", ago_s=60)
    env["wechat"].scripted_errors = [45015]
    alert = safety_alert()
    summary = await env["warnings"]().warn_for_alert(alert, "supervisor1")
    assert summary["sent"] == 1
    assert len(env["rasa"].texts("web:aaaaaaaaaaaaaaaa")) == 1 and env["wechat"].sent == []
    [record] = [r for r in await env["warnings"]().deliveries(alert.id) if r["customer_id"] == "c1001"]
    assert record["channel"] == "web" and [t["status"] for t in record["tried"]] == ["unreachable", "sent"]


async def test_wired_from_the_environment_wechat_and_its_template_are_used(env):
    await seen(env, "c1001", "wx:oShopperOne", "wechat")
    rasa_api = RasaApi(env["rasa_url"], RASA_TOKEN)
    settings = {"WECHAT_APPID": "wxappid", "WECHAT_SECRET": "secret", "WECHAT_API_BASE": env["wechat_url"],
                "WECHAT_SAFETY_TEMPLATE_ID": TEMPLATE}
    wired = shopper_warnings_for(env["redis"], env["orders"], rasa_api, settings, prefix=env["prefix"])
    env["clients"].extend([rasa_api, wired])
    assert (await wired.warn_for_alert(safety_alert(), "supervisor1"))["sent"] == 1
    assert [m["template_id"] for m in env["wechat"].subscribed] == [TEMPLATE]
    without = shopper_warnings_for(env["redis"], env["orders"], rasa_api, {}, prefix=env["prefix"])
    alert = safety_alert()
    assert (await without.warn_for_alert(alert, "supervisor1"))["unreachable"] == 2
    [record] = [r for r in await without.deliveries(alert.id) if r["customer_id"] == "c1001"]
    assert (record["status"], record["tried"][0]["error"]) == ("unreachable", "wechat_not_configured")


@pytest.mark.parametrize("alert, note", [
    (safety_alert(sku=None), "SKU"),
    (safety_alert(safety=False), "安全类"),
    (safety_alert(confirmed_by=None), "确认"),
])
async def test_no_sku_not_safety_or_not_confirmed_warns_nobody_and_says_so(env, alert, note):
    await seen(env, "c1001", "web:aaaaaaaaaaaaaaaa", "web")
    summary = await env["warnings"]().warn_for_alert(alert, "supervisor1")
    assert (summary["sent"], summary["buyers"]) == (0, 0) and note in summary["note"]
    assert env["rasa"].events == {}


async def test_a_claim_left_by_a_dead_sender_is_taken_over_only_once_stale(env):
    await seen(env, "c1001", "web:aaaaaaaaaaaaaaaa", "web")
    alert = safety_alert(sku="SKU-40002")  # the charger: c1001 only
    claims = f"{env['prefix']}warning-claims:{alert.id}"
    await env["redis"].hset(claims, "c1001", f"pending:{time.time():.3f}:someone")
    assert (await env["warnings"]().warn_for_alert(alert, "supervisor1"))["already"] == 1
    await env["redis"].hset(claims, "c1001", f"pending:{time.time() - 3600:.3f}:someone")
    assert (await env["warnings"]().warn_for_alert(alert, "supervisor1"))["sent"] == 1
    assert "快充充电器" in env["rasa"].texts("web:aaaaaaaaaaaaaaaa")[0]


def test_the_warning_names_the_risk_and_what_to_do_without_liability_or_amounts():
    texts = load_warning_texts()
    for reason, words in [("fire", ["起火", "断开", "119"]), ("electric_shock", ["触电", "电源"]),
                          ("injury", ["人身伤害", "儿童"]), ("poisoning", ["中毒", "停止食用", "120"]),
                          ("something_else", ["安全", "停止使用"])]:
        text = warning_text(texts, PRODUCT, reason, dt.date(2026, 11, 20))
        assert all(w in text for w in words), (reason, text)
        assert "11月20日" in text and PRODUCT in text and "保留商品、包装" in text and "就医" in text
        assert "小保" in text and "转人工" in text and "退货" in text
        assert not re.search(r"赔偿|赔付|补偿|责任|\d+\s*(元|倍)", text), text


@pytest.mark.parametrize("reason, label", [("fire", "起火、过热"), ("overheating", "起火、过热"), ("起火", "起火、过热"),
                                           ("shock", "触电、漏电"), ("poisoning", "中毒或引起身体不适"),
                                           ("injury", "造成人身伤害"), ("", "安全"), ("profile", "安全")])
def test_the_reason_picks_the_risk(reason, label):
    assert risk_of(load_warning_texts(), reason).label == label


def test_subscribe_fields_fit_wechats_limits():
    fields = subscribe_fields(load_warning_texts(), "超长商品名" * 10, "fire")
    assert set(fields) == {"thing1", "thing2", "thing3"}
    assert all(0 < len(v) <= THING_CHARS for v in fields.values())


def test_the_warnings_module_does_not_import_rasa():
    check = ("import bot.risk.warnings, sys; "
             "assert not [m for m in sys.modules if m == 'rasa' or m.startswith('rasa.')]")
    result = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]

