"""风险预警 in the console (issue 15): supervisors only (page, API, WebSocket), filters, the
alert transitions with their CSRF and refusals, and shopper text kept as text. Real Redis; each
test has its own risk key prefix, so alerts of other tests never show up."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
import uuid

import pytest
from cryptography.fernet import Fernet

from bot.console.app import SERVICES, ConsoleConfig, create_app
from bot.orders.demo import demo_orders
from bot.redis_url import async_redis
from bot.risk.alerts import AlertStore
from bot.risk.contacts import ContactBook
from bot.risk.detector import Finding, SeriesKey, assess_safety, load_thresholds, series_keys
from bot.risk.events import new_event
from bot.risk.stream import RiskStream
from tests.console.test_console import RASA_TOKEN, FakeRasa, login

PASSWORD = "correct horse battery"
XSS = "<img src=x onerror=alert(1)>"


def hourly_series(counts, expected=0.5):
    start = int(time.time()) // 3600 * 3600 - (len(counts) - 1) * 3600
    return {"start": start, "bucket_s": 3600, "counts": list(counts), "expected_per_bucket": expected}


async def safety_alert(store: AlertStore, sku="SKU-60001", merchant="m-jiadian", category="家电", text="电饭煲冒烟起火了"):
    event = new_event("safety", "fire", "wechat", sku=sku, merchant=merchant, category=category,
                      ticket="T-20261203-0001", text=text)
    key = series_keys(event)[0]
    assert key.dimension == "sku"
    finding = assess_safety(key, 1, 1, load_thresholds())
    return await store.record(finding, event, hourly_series([0] * 23 + [1], expected=0.0))


async def trend_alert(store: AlertStore, merchant: str, category: str, severity="high", sku=None):
    event = new_event("return", "quality", "socketio", sku=sku or f"SKU-{uuid.uuid4().hex[:6]}", merchant=merchant,
                      category=category, text="质量太差了")
    key = SeriesKey("sku", event.sku, "return", "quality")
    finding = Finding(key=str(key), dimension="sku", value=event.sku, kind="return", reason="quality",
                      severity=severity, observed=12, expected=3.1, ratio=3.9, window_h=24, p_value=1e-7,
                      rule="近24小时商品的「质量问题」退货 12 起，按基线应约 3.1 起（3.9 倍）")
    return await store.record(finding, event, hourly_series([0] * 20 + [3, 4, 5, 0], expected=0.13))


@pytest.fixture
async def risk_env(redis_url, aiohttp_server, aiohttp_client):
    rasa = FakeRasa()
    rasa_server = await aiohttp_server(rasa.app())
    prefix = f"xb:test-risk:{uuid.uuid4().hex[:8]}:"
    config = ConsoleConfig(redis_url=redis_url, rasa_url=str(rasa_server.make_url("")), rasa_token=RASA_TOKEN,
                           session_key=Fernet.generate_key(), sla_interval_s=3600, refresh_interval_s=3600,
                           risk_prefix=prefix)
    app = create_app(config)
    services_client = await aiohttp_client(app)
    services = app[SERVICES]
    boss, agent = f"boss{uuid.uuid4().hex[:6]}", f"agent{uuid.uuid4().hex[:6]}"
    await services.agents.add(boss, PASSWORD, role="supervisor")
    await services.agents.add(agent, PASSWORD)
    other = async_redis(redis_url)  # another replica's connection: changes made elsewhere
    yield {"app": app, "client": services_client, "boss": boss, "agent": agent, "prefix": prefix, "rasa": rasa,
           "alerts": AlertStore(other, prefix=prefix), "aiohttp_client": aiohttp_client}
    await other.close()


async def as_supervisor(env):
    return await login(env["client"], env["boss"])


async def as_agent(env):
    client = await env["aiohttp_client"](env["app"])
    return client, await login(client, env["agent"])


async def test_supervisors_see_the_link_and_the_page(risk_env):
    client = risk_env["client"]
    await as_supervisor(risk_env)
    home = await (await client.get("/")).text()
    assert '<a href="/risk">风险预警</a>' in home and '<a href="/reports/monthly">月度报告</a>' in home
    page = await client.get("/risk")
    assert page.status == 200
    html = await page.text()
    assert "风险预警" in html and "确认收到" in html and "已处理" in html
    assert '<script src="/static/vendor/chartjs/chart.umd.min.js">' in html
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    chart = await client.get("/static/vendor/chartjs/chart.umd.min.js")
    assert chart.status == 200 and "Chart.js v4" in (await chart.text())[:200]
    assert (await client.get("/api/risk/alerts")).status == 200


async def test_agents_get_403_on_page_api_and_websocket(risk_env):
    alert = await safety_alert(risk_env["alerts"])
    client, csrf = await as_agent(risk_env)
    home = await (await client.get("/")).text()
    assert "/risk" not in home and "风险预警" not in home and "月度报告" not in home
    page = await client.get("/risk")
    assert page.status == 403 and "仅主管" in await page.text() and page.content_type == "text/html"
    for path in ("/api/risk/alerts", f"/api/risk/alerts/{alert.id}", "/ws/risk"):
        response = await client.get(path)
        assert response.status == 403, path
        assert (await response.json())["error"] == "仅主管可以查看风险预警"
    for op in ("acknowledge", "assign", "resolve", "note", "confirm"):
        response = await client.post(f"/api/risk/alerts/{alert.id}/{op}", json={"text": "x", "to": risk_env["agent"]},
                                     headers={"X-CSRF-Token": csrf})
        assert response.status == 403, op
    assert (await risk_env["alerts"].get(alert.id)).version == alert.version  # nothing changed


async def test_a_demoted_supervisor_loses_access_at_once(risk_env):
    client, services = risk_env["client"], risk_env["app"][SERVICES]
    await as_supervisor(risk_env)
    ws = await client.ws_connect("/ws/risk")
    first = await asyncio.wait_for(ws.receive_json(), timeout=5)
    assert first["type"] == "alerts"
    assert (await client.get("/api/risk/alerts")).status == 200
    await services.agents.add(risk_env["boss"], PASSWORD, role="agent")  # demoted, still logged in
    assert (await client.get("/api/risk/alerts")).status == 403
    assert (await client.get("/risk")).status == 403
    await safety_alert(risk_env["alerts"])  # the next push finds the role changed
    closed = await asyncio.wait_for(ws.receive(), timeout=5)
    assert ws.closed and ws.close_code == 4403, closed


async def test_unauthenticated_and_cross_origin_websockets_are_refused(risk_env):
    client = risk_env["client"]
    assert (await client.get("/ws/risk")).status == 401
    await as_supervisor(risk_env)
    evil = await client.get("/ws/risk", headers={"Origin": "http://evil.example", "Connection": "Upgrade",
                                                 "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                                                 "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert evil.status == 403


async def test_filters_by_merchant_category_severity_and_status(risk_env):
    store, client = risk_env["alerts"], risk_env["client"]
    a = await trend_alert(store, "m-huayi", "服饰", "high")
    b = await trend_alert(store, "m-huayi", "鞋靴", "normal")
    c = await trend_alert(store, "m-shuma", "数码", "high")
    s = await safety_alert(store)
    await as_supervisor(risk_env)

    async def ids(query=""):
        response = await client.get("/api/risk/alerts" + query)
        assert response.status == 200
        return [x["id"] for x in (await response.json())["alerts"]]

    assert await ids() == [s.id, c.id, b.id, a.id]  # newest first
    assert await ids("?merchant=m-huayi") == [b.id, a.id]
    assert await ids("?category=数码") == [c.id]
    assert await ids("?severity=high") == [c.id, a.id]
    assert await ids("?merchant=m-huayi&severity=high") == [a.id]
    assert await ids("?severity=urgent&category=家电") == [s.id]
    await store.resolve(b.id, "someone")
    assert await ids("?status=resolved") == [b.id]
    assert await ids("?status=live&merchant=m-huayi") == [a.id]
    for bad in ("?severity=<script>", "?status=deleted", "?merchant=" + "x" * 65):
        response = await client.get("/api/risk/alerts" + bad)
        assert response.status == 400, bad
    listed = (await (await client.get("/api/risk/alerts?severity=urgent")).json())["alerts"][0]
    assert listed["severity_label"] == "紧急" and listed["status_label"] == "待处理"
    assert listed["kind_label"] == "安全事件" and listed["reason_label"] == "起火"
    assert "samples" not in listed and listed["samples_count"] == 1  # the list stays small; the detail has them


async def test_transitions_need_csrf_and_refusals_are_409(risk_env):
    store, client = risk_env["alerts"], risk_env["client"]
    alert = await trend_alert(store, "m-bangong", "办公")
    csrf = await as_supervisor(risk_env)
    url, headers = f"/api/risk/alerts/{alert.id}", {"X-CSRF-Token": csrf}

    for op in ("acknowledge", "resolve", "note", "assign", "confirm"):
        assert (await client.post(f"{url}/{op}", json={"text": "x"})).status == 403, op
        assert (await client.post(f"{url}/{op}", json={"text": "x"}, headers={"X-CSRF-Token": "forged"})).status == 403
    assert (await store.get(alert.id)).status == "open"

    done = await client.post(f"{url}/acknowledge", headers=headers)
    assert done.status == 200 and (await done.json())["alert"]["status"] == "acknowledged"
    again = await client.post(f"{url}/acknowledge", headers=headers)
    assert again.status == 409 and (await again.json())["error"] == "该预警当前的状态不允许这个操作"

    assert (await client.post(f"{url}/assign", json={"to": "nobody-here"}, headers=headers)).status == 400
    assigned = await client.post(f"{url}/assign", json={"to": risk_env["agent"]}, headers=headers)
    assert assigned.status == 200 and (await assigned.json())["alert"]["assignee"] == risk_env["agent"]

    assert (await client.post(f"{url}/note", json={"text": "  "}, headers=headers)).status == 400
    assert (await client.post(f"{url}/note", json={"text": "x" * 2001}, headers=headers)).status == 400
    assert (await client.post(f"{url}/note", data="not json", headers=headers)).status == 400
    noted = await client.post(f"{url}/note", json={"text": "已联系商家核实批次"}, headers=headers)
    assert noted.status == 200

    resolved = await client.post(f"{url}/resolve", json={"note": "商家已下架该批次"}, headers=headers)
    body = (await resolved.json())["alert"]
    assert resolved.status == 200 and body["status"] == "resolved" and body["status_label"] == "已处理"
    assert [n["text"] for n in body["notes"]] == ["已联系商家核实批次", "商家已下架该批次"]
    assert [h["op"] for h in body["history"]] == ["create", "acknowledge", "assign", "note", "resolve"]
    assert all(h["by"] == risk_env["boss"] for h in body["history"][1:])
    assert (await client.post(f"{url}/resolve", headers=headers)).status == 409
    refused = await client.post(f"{url}/confirm", headers=headers)
    assert refused.status == 409 and "安全事件" in (await refused.json())["error"]  # not a safety alert

    for missing in ("R2099010100001", "..%2F..%2Fetc", "x" * 200, "a%20b"):
        assert (await client.get(f"/api/risk/alerts/{missing}")).status == 404, missing
        assert (await client.post(f"/api/risk/alerts/{missing}/acknowledge", headers=headers)).status == 404


async def test_confirming_a_safety_alert_warns_its_buyers_once(risk_env):
    """确认安全风险并告知已购买顾客: the buyer of the SKU seen in web chat is warned through Rasa, the
    one never seen in a chat is counted unreachable; confirming again warns nobody twice."""
    services, prefix = risk_env["app"][SERVICES], risk_env["prefix"]
    sku = f"SKU-T{uuid.uuid4().hex[:8]}"  # only these test orders have it
    demo = demo_orders(dt.date.today())[0]
    buyers = [f"c-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    await services.orders.save_orders([
        dataclasses.replace(demo, order_id=f"99{uuid.uuid4().int % 10**14:014d}", customer_id=customer,
                            items=(dataclasses.replace(demo.items[0], sku=sku),)) for customer in buyers])
    conversation = f"web:{uuid.uuid4().hex[:16]}"
    await ContactBook(services.redis, prefix=prefix).remember(buyers[0], conversation, "web")
    alert = await safety_alert(risk_env["alerts"], sku=sku)
    csrf = await as_supervisor(risk_env)
    url, headers = f"/api/risk/alerts/{alert.id}/confirm", {"X-CSRF-Token": csrf}

    response = await risk_env["client"].post(url, headers=headers)
    body = await response.json()
    assert response.status == 200, body
    assert (body["summary"]["sent"], body["summary"]["unreachable"]) == (1, 1)
    assert body["message"] == "已告知 1 位已购买顾客，无法联系 1 位。"
    assert body["alert"]["confirmed_by"] == risk_env["boss"] and body["alert"]["warning"]["sent"] == 1
    assert [h["op"] for h in body["alert"]["history"]][-2:] == ["confirm", "warn"]
    [warning] = [e for e in risk_env["rasa"].events[conversation] if e["event"] == "bot"]
    assert warning["metadata"]["risk_alert"] == alert.id

    again = await (await risk_env["client"].post(url, headers=headers)).json()
    assert (again["summary"]["sent"], again["summary"]["already"]) == (0, 1)
    assert len([e for e in risk_env["rasa"].events[conversation] if e["event"] == "bot"]) == 1


async def test_the_websocket_pushes_a_new_alert(risk_env):
    client, store = risk_env["client"], risk_env["alerts"]
    await as_supervisor(risk_env)
    ws = await client.ws_connect("/ws/risk")
    first = await asyncio.wait_for(ws.receive_json(), timeout=5)
    assert first == {"type": "alerts", "alerts": []}
    alert = await safety_alert(store)  # recorded by "another replica"
    pushed = await asyncio.wait_for(ws.receive_json(), timeout=5)  # the refresh interval is an hour: a push
    assert [a["id"] for a in pushed["alerts"]] == [alert.id]
    assert pushed["alerts"][0]["severity"] == "urgent"
    await ws.close()


async def test_a_safety_report_from_any_replica_reaches_the_page(risk_env, redis_url):
    """The console process consumes the risk-event stream itself: a safety report published by
    another replica becomes an urgent alert, pushed to the open page within seconds."""
    client = risk_env["client"]
    await as_supervisor(risk_env)
    ws = await client.ws_connect("/ws/risk")
    assert (await asyncio.wait_for(ws.receive_json(), timeout=5))["alerts"] == []
    producer = async_redis(redis_url)
    try:
        event = new_event("safety", "shock", "wechat", sku="SKU-60003", merchant="m-jiadian", category="家电",
                          ticket="T-20261203-0009", text="台灯漏电，孩子被电了一下")
        assert await RiskStream(producer, prefix=risk_env["prefix"]).publish(event)
        pushed = await asyncio.wait_for(ws.receive_json(), timeout=8)
    finally:
        await producer.close()
    alert = pushed["alerts"][0]
    assert alert["severity"] == "urgent" and alert["safety"] and alert["sku"] == "SKU-60003"
    detail = await (await client.get(f"/api/risk/alerts/{alert['id']}")).json()
    assert detail["samples"][0]["ticket"] == "T-20261203-0009"
    await ws.close()


async def test_shopper_excerpts_stay_text(risk_env):
    """An excerpt is shopper text: it reaches the page only as JSON (inserted with textContent by
    risk.js; the browser test checks no element is made of it), never in server-rendered HTML."""
    alert = await safety_alert(risk_env["alerts"], text=f"充电器着火了 {XSS}")
    client = risk_env["client"]
    await as_supervisor(risk_env)
    detail = await client.get(f"/api/risk/alerts/{alert.id}")
    assert detail.content_type == "application/json"
    assert XSS in (await detail.json())["samples"][0]["excerpt"]  # kept as the text it is
    html = await (await client.get("/risk")).text()
    assert "<img" not in html and "onerror" not in html
    script = await (await client.get("/static/risk.js")).text()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
