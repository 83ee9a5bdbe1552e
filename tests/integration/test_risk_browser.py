"""风险预警 in headless Chromium (issue 15): a supervisor sees a new alert appear live (a safety
report published to the risk stream, consumed by the console's own worker), opens it, sees its
chart drawn, acknowledges it and confirms the safety risk (two clicks); an agent without the
supervisor role sees no link and gets 403.

Set RISK_SCREENSHOT=docs/screenshots/risk-alerts.png to save the page (an open alert and its chart)
for the README."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import random
import time
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.console.app import SERVICES, ConsoleConfig, create_app
from bot.orders.demo import demo_orders
from bot.redis_url import async_redis
from bot.risk.alerts import AlertStore
from bot.risk.contacts import ContactBook
from bot.risk.detector import Finding, SeriesKey
from bot.risk.events import new_event
from bot.risk.stream import RiskStream
from tests.console.test_console import RASA_TOKEN, FakeRasa
from tests.integration.conftest import CHROMIUM, CHROMIUM_ARGS, needs_chromium

PASSWORD = "correct horse battery"
XSS = "<img src=x onerror=alert(1)>"
HOURS = 696  # the series length the worker keeps with the default thresholds


def seasonal_counts(spike: list, rate: float = 0.12) -> list:
    """Four weeks of Poisson counts with a daily rhythm (busy evenings), then the spike's last hours."""
    rng = random.Random(15)

    def poisson(mean: float) -> int:
        k, p, limit = 0, rng.random(), math.exp(-mean)
        while p > limit:
            k, p = k + 1, p * rng.random()
        return k

    rhythm = [rate * (0.3 + 1.4 * max(0.0, math.sin((h - 7) / 17 * math.pi))) if 7 <= h <= 24 else rate * 0.3
              for h in range(24)]
    return [poisson(rhythm[h % 24]) for h in range(HOURS - len(spike))] + spike


async def trend_alert(store: AlertStore, sku: str, merchant: str, category: str, severity: str, observed: int,
                      expected: float, rule: str, spike: list, text: str):
    event = new_event("return", "quality", "socketio", sku=sku, merchant=merchant, category=category,
                      ticket=f"T-20261203-{uuid.uuid4().hex[:4]}", text=text)
    key = SeriesKey("sku", sku, "return", "quality")
    finding = Finding(key=str(key), dimension="sku", value=sku, kind="return", reason="quality", severity=severity,
                      observed=observed, expected=expected, ratio=round(observed / expected, 1), window_h=24,
                      p_value=1e-8, rule=rule)
    start = int(time.time()) // 3600 * 3600 - (HOURS - 1) * 3600
    series = {"start": start, "bucket_s": 3600, "counts": seasonal_counts(spike), "expected_per_bucket": expected / 24}
    return await store.record(finding, event, series)


@pytest.fixture
async def risk_browser_env(redis_url, aiohttp_server, aiohttp_client):
    rasa = FakeRasa()
    rasa_server = await aiohttp_server(rasa.app())
    prefix = f"xb:test-risk-browser:{uuid.uuid4().hex[:8]}:"
    config = ConsoleConfig(redis_url=redis_url, rasa_url=str(rasa_server.make_url("")), rasa_token=RASA_TOKEN,
                           session_key=Fernet.generate_key(), sla_interval_s=3600, risk_prefix=prefix)
    app = create_app(config)
    client = await aiohttp_client(app)
    services = app[SERVICES]
    boss, agent = f"主管{uuid.uuid4().hex[:4]}", f"客服{uuid.uuid4().hex[:4]}"
    await services.agents.add(boss, PASSWORD, role="supervisor")
    await services.agents.add(agent, PASSWORD)
    other = async_redis(redis_url)  # another replica: where the alerts and events come from
    store = AlertStore(other, prefix=prefix)
    await trend_alert(store, "SKU-60001", "m-jiadian", "家用电器", "high", 14, 2.6,
                      "近24小时商品「SKU-60001」的「质量问题」退货 14 起，按近28天占比的基线应约 2.6 起（5.4 倍），超出正常波动。",
                      [0, 1, 0, 1, 1, 2, 0, 1, 2, 1, 3, 2], "电饭煲内胆涂层脱落，煮饭有黑渣")
    await trend_alert(store, "SKU-10002", "m-huayi", "服装鞋包", "normal", 7, 2.9,
                      "近24小时商品「SKU-10002」的「质量问题」退货 7 起，按近28天占比的基线应约 2.9 起（2.4 倍），超出正常波动。",
                      [0, 1, 1, 0, 2, 1, 1, 1], "鞋底开胶了，穿了两天")
    # A shopper who bought the charger and was last seen in web chat: told when the risk is confirmed.
    demo = demo_orders(dt.date.today())[0]
    buyer, conversation = f"c-{uuid.uuid4().hex[:8]}", f"web:{uuid.uuid4().hex[:16]}"
    await services.orders.save_orders([dataclasses.replace(
        demo, order_id=f"98{uuid.uuid4().int % 10**14:014d}", customer_id=buyer,
        items=(dataclasses.replace(demo.items[0], name="快充充电器", sku="SKU-40002", merchant="m-shuma"),))])
    await ContactBook(other, prefix=prefix).remember(buyer, conversation, "web")
    yield {"base": str(client.make_url("")).rstrip("/"), "boss": boss, "agent": agent, "prefix": prefix,
           "store": store, "stream": RiskStream(other, prefix=prefix), "rasa": rasa, "conversation": conversation}
    await other.close()


async def log_in(page, base: str, name: str) -> None:
    await page.goto(base + "/login")
    await page.get_by_label("用户名").fill(name)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_url(base + "/")


@needs_chromium
async def test_a_supervisor_sees_a_new_alert_live_opens_its_chart_and_acknowledges_it(risk_browser_env):
    from playwright.async_api import async_playwright, expect

    env, base = risk_browser_env, risk_browser_env["base"]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1000})
            dialogs = []

            async def on_dialog(dialog):
                dialogs.append(dialog.message)
                await dialog.dismiss()

            page.on("dialog", on_dialog)
            await log_in(page, base, env["boss"])
            await page.get_by_role("link", name="风险预警").click()
            await page.wait_for_url(base + "/risk")
            await expect(page.locator("#live")).to_have_text("实时更新中", timeout=15000)
            cards = page.locator(".alert-card")
            await expect(cards).to_have_count(2, timeout=15000)
            title = await page.title()

            # A shopper reports a fire; another replica publishes it; this console's worker alerts.
            event = new_event("safety", "fire", "wechat", sku="SKU-40002", merchant="m-shuma", category="手机数码",
                              ticket="T-20261203-0042", text=f"快充充电器充电时冒烟起火，把桌子烧黑了 {XSS}")
            assert await env["stream"].publish(event)
            new_card = page.locator(".alert-card.fresh", has_text="SKU-40002")
            await expect(new_card).to_be_visible(timeout=15000)  # no reload
            await expect(new_card).to_contain_text("紧急")
            await expect(cards).to_have_count(3)
            assert await page.title() != title and (await page.title()).startswith("【紧急预警】")

            await new_card.click()
            detail = page.locator("#detail")
            await expect(detail).to_be_visible()
            await expect(page.locator("#d-rule")).to_contain_text("安全事件")
            await expect(page.locator("#d-samples")).to_contain_text(XSS)  # shown as text ...
            assert await page.locator("#d-samples img, #alerts img").count() == 0  # ... never as an element
            assert dialogs == []
            await expect(page.locator("#d-samples a")).to_have_attribute("href", "/tickets/T-20261203-0042")
            await expect(page.locator("#safety-box")).to_be_visible()
            await page.wait_for_function("""() => {
                const canvas = document.getElementById('risk-chart');
                const chart = window.Chart && Chart.getChart(canvas);
                if (!chart || canvas.width === 0) return false;
                const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
                for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) return true;
                return false;
            }""", timeout=15000)
            reports = await page.evaluate(
                "() => Chart.getChart(document.getElementById('risk-chart')).data.datasets[0].data.reduce((a, b) => a + b, 0)")
            assert reports >= 1
            assert await page.title() == title  # the urgent alert has been seen

            await page.get_by_role("button", name="确认收到").click()
            await expect(page.locator("#d-meta")).to_contain_text("已确认收到", timeout=15000)
            await expect(page.locator("#d-history")).to_contain_text("确认收到")
            await expect(page.locator("#a-ack")).to_be_disabled()
            await expect(page.locator(".alert-card", has_text="SKU-40002")).to_contain_text("已确认收到")
            stored = await env["store"].get((await page.locator(".alert-card.selected").get_attribute("data-alert-id")))
            assert stored.status == "acknowledged" and stored.history[-1]["by"] == env["boss"]

            confirm = page.locator("#a-confirm")
            await confirm.click()  # the first click only arms it: warning shoppers cannot be undone
            await expect(confirm).to_contain_text("再次点击")
            assert (await env["store"].get(stored.id)).confirmed_by is None
            await confirm.click()
            await expect(page.locator("#a-status")).to_have_text("已告知 1 位已购买顾客。", timeout=15000)
            await expect(page.locator("#d-warning")).to_contain_text(f"已由 {env['boss']}")
            await expect(confirm).to_be_disabled()
            assert (await env["store"].get(stored.id)).confirmed_by == env["boss"]
            [told] = [e for e in env["rasa"].events[env["conversation"]] if e["event"] == "bot"]
            assert told["metadata"]["risk_alert"] == stored.id

            await page.locator(".alert-card", has_text="SKU-60001").click()
            await expect(page.locator("#d-title")).to_contain_text("SKU-60001")
            await page.wait_for_function(
                "() => { const c = Chart.getChart(document.getElementById('risk-chart')); "
                "return c && c.data.datasets[0].data.length === 168; }", timeout=15000)
            await page.locator("#f-severity").select_option("high")
            await expect(cards).to_have_count(1)
            await expect(cards).to_contain_text("SKU-60001")
            await page.locator("#f-severity").select_option("")
            await expect(cards).to_have_count(3)
            screenshot = os.environ.get("RISK_SCREENSHOT")
            if screenshot:
                Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=screenshot, full_page=True)
        finally:
            await browser.close()


@needs_chromium
async def test_an_agent_without_the_supervisor_role_cannot_see_alerts(risk_browser_env):
    from playwright.async_api import async_playwright, expect

    env, base = risk_browser_env, risk_browser_env["base"]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = await browser.new_page()
            await log_in(page, base, env["agent"])
            await expect(page.locator("header nav")).to_contain_text("队列")
            await expect(page.get_by_role("link", name="风险预警")).to_have_count(0)
            response = await page.goto(base + "/risk")
            assert response.status == 403
            await expect(page.locator("body")).to_contain_text("仅主管可以查看风险预警")
            await expect(page.locator("body")).not_to_contain_text("SKU-60001")
            api = await page.request.get(base + "/api/risk/alerts")
            assert api.status == 403 and "SKU" not in await api.text()
        finally:
            await browser.close()
