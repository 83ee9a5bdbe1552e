"""Issue 16 in the shopper's web chat, in headless Chromium (Debian's chromium) against the real stack:
(4) waiting for a person: the status bar 排队中（第N位）→ 客服「小王」已接入 → 已结束, no endless
「小保正在输入…», the agent's typing, the bot's buttons disabled, the survey; the widget reports
typing and presence;
(6) a reload restores taps as titles, photos, order cards, the live buttons, the handoff state,
timestamps and the scroll position;
(8) 适老化: 44×44 px targets, 24px 大字 for body and controls, Esc after a keyboard quick reply,
图片's focus ring, and axe-core with no serious violations, on desktop and phone.

Bot messages with contract-(A) payloads are injected through Rasa's API (as the console and the
actions send them), and `agent_typing` through the socket.io Redis manager (as the console emits
it), so these tests do not depend on when the other parts land.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time

import pytest
import redis.asyncio as aioredis

from bot.channels.socketio import REDIS_CHANNEL, JsonRedisManager
from bot.orders.demo import demo_orders
from bot.orders.models import to_dict
from bot.rasa_api import RasaApi
from tests.integration.axe import axe_serious
from tests.integration.conftest import needs_chromium

pytestmark = pytest.mark.integration
PHONE = {"width": 390, "height": 800}
DESKTOP = {"width": 1280, "height": 800}
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e5274de10000000049454e44ae426082")


async def open_chat(browser, web_url, viewport, customer="c1001"):
    page = await browser.new_page(viewport=viewport)
    await page.goto(f"{web_url}/shop?customer={customer}")
    await page.get_by_role("button", name="在线客服").click()
    chat = page.get_by_role("dialog", name="小保 · 智能客服")
    await chat.wait_for()
    return page, chat


async def conversation_of(page) -> str:
    for _ in range(100):
        session = await page.evaluate("localStorage.getItem('xiaobao.session')")
        if session:
            return "web:" + session.split(".")[0]
        await page.wait_for_timeout(100)
    raise AssertionError("the widget never got a session")


async def say(chat, text):
    box = chat.get_by_label("输入您的问题")
    await box.fill(text)
    await box.press("Enter")


async def say_and_wait(chat, text):
    """Says `text` and waits for the bot's answer (the welcome already says 小保)."""
    from playwright.async_api import expect

    bubbles = chat.locator(".xb-bot .xb-bubble")
    before = await bubbles.count()
    await say(chat, text)
    await expect(bubbles).not_to_have_count(before, timeout=30000)


async def inject(stack, conversation, *messages):
    """Bot messages ({"text", "buttons", "custom"}) delivered to the shopper and recorded, as the
    console and the actions send them."""
    rasa = RasaApi(f"http://127.0.0.1:{stack.rasa_port}", stack.token)
    try:
        events = []
        for m in messages:
            data = {key: m[key] for key in ("buttons", "custom") if key in m}
            events.append({"event": "bot", "text": m.get("text"), "data": data, "timestamp": time.time(),
                           "metadata": m.get("metadata", {})})
        await rasa.append_events(conversation, events)
    finally:
        await rasa.close()


async def emit_agent_typing(stack, conversation, typing, name="小王"):
    manager = JsonRedisManager(stack.redis_url, channel=REDIS_CHANNEL, write_only=True)
    await manager.emit("agent_typing", {"typing": typing, "agent_name": name}, room=conversation, namespace="/")


def status(kind, **fields):
    return {"custom": {"type": "handoff_status", "state": kind, "ticket_id": "T2026120300042", **fields}}


# --- 4: waiting for a person -----------------------------------------------------------------


@needs_chromium
async def test_waiting_for_a_person_shows_the_queue_the_agent_and_the_end(stack, demo, console, browser):
    from playwright.async_api import expect

    web_url, _agent = console
    page, chat = await open_chat(browser, web_url, DESKTOP)
    typing = chat.locator(".xb-typing")
    await say_and_wait(chat, "你好")
    await expect(typing).to_have_text("")  # the reply came: nothing is pending
    conversation = await conversation_of(page)

    await say(chat, "转人工")
    await expect(chat.locator(".xb-bot .xb-bubble", has_text="工单号").first).to_be_visible(timeout=30000)
    await page.wait_for_timeout(500)  # and the bot's own queue status, if it sends one
    await inject(stack, conversation, {"text": "还有别的问题吗？", "buttons": [
        {"title": "是的", "payload": "/affirm"}, {"title": "没有了", "payload": "/deny"}]},
        status("queued", position=2, eta_min=6))
    bar = chat.get_by_role("status")
    await expect(bar).to_contain_text("排队中（第2位）", timeout=15000)
    old = chat.get_by_role("button", name="没有了")
    await expect(old).to_have_attribute("aria-disabled", "true")
    await expect(old).to_be_disabled()

    # While a person handles the chat the bot is not "typing", however long the wait.
    await say(chat, "还要等多久")
    await page.wait_for_timeout(1500)
    await expect(typing).not_to_contain_text("小保正在输入")

    await inject(stack, conversation, status("claimed", agent_name="小王"))
    await expect(bar).to_contain_text("客服「小王」已接入", timeout=15000)
    await emit_agent_typing(stack, conversation, True)
    await expect(typing).to_have_text("客服「小王」正在输入…", timeout=15000)
    await emit_agent_typing(stack, conversation, False)
    await expect(typing).to_have_text("", timeout=15000)
    await expect(old).to_be_disabled()

    await inject(stack, conversation, {"text": "您好，我是客服小王，已为您加急处理", "metadata": {"sent_by": "agent", "agent_name": "小王"}},
                 status("ended"), {"text": "请为本次服务评价", "custom": {"type": "survey", "ticket_id": "T2026120300042"}})
    await expect(bar).to_contain_text("已结束", timeout=15000)
    survey = chat.get_by_role("group", name="问题是否解决？")
    await survey.get_by_role("button", name="是", exact=True).click()
    await survey.get_by_role("button", name="4星").click()
    await survey.get_by_label("补充说明（选填）").fill("小王很耐心")
    await survey.get_by_role("button", name="提交评价").click()
    await expect(chat.locator(".xb-user .xb-bubble").last).to_have_text("问题已解决，评分：4分，评价：小王很耐心")
    await expect(chat.locator(".xb-log")).not_to_contain_text("/rate")

    # A reload restores the last state from the history.
    await page.reload()
    await expect(page.get_by_role("status")).to_contain_text("已结束", timeout=15000)
    await expect(page.locator(".xb-log")).to_contain_text("问题已解决，评分：4分")

    # The widget says who is there and typing (contract B): the console reads it from Redis.
    redis = aioredis.Redis.from_url(stack.redis_url, decode_responses=True)
    try:
        await page.get_by_label("输入您的问题").press_sequentially("我想")
        for _ in range(50):
            if await redis.get(f"xb:typing:{conversation}") == "1":
                break
            await page.wait_for_timeout(100)
        assert await redis.get(f"xb:typing:{conversation}") == "1"
        assert await redis.exists(f"xb:presence:{conversation}")
        await page.get_by_label("输入您的问题").fill("")
    finally:
        await redis.close()


@needs_chromium
async def test_the_bot_typing_indicator_gives_up_after_ten_seconds(stack, demo, console, browser):
    from playwright.async_api import expect

    web_url, _agent = console
    page = await browser.new_page(viewport=DESKTOP)

    async def unreachable_rasa(route):  # the storefront points the widget at a socket that never answers
        response = await route.fetch()
        html = (await response.text()).replace(f"127.0.0.1:{stack.rasa_port}", "127.0.0.1:9")
        await route.fulfill(response=response, body=html)

    await page.route("**/shop?customer=c1001", unreachable_rasa)
    await page.goto(f"{web_url}/shop?customer=c1001")
    await page.get_by_role("button", name="在线客服").click()
    chat = page.get_by_role("dialog", name="小保 · 智能客服")
    typing = chat.locator(".xb-typing")
    await say(chat, "你好")
    await expect(typing).to_have_text("小保正在输入…")
    await page.wait_for_timeout(8000)
    await expect(typing).to_have_text("小保正在输入…")  # still plausibly on its way
    await expect(typing).to_have_text("", timeout=5000)  # never "typing" forever


# --- 6: a reload restores everything ---------------------------------------------------------


@needs_chromium
async def test_a_reload_restores_taps_photos_cards_live_buttons_and_the_scroll_position(stack, demo, console, browser, tmp_path):
    from playwright.async_api import expect

    web_url, _agent = console
    page, chat = await open_chat(browser, web_url, PHONE)
    await say_and_wait(chat, "你好")
    conversation = await conversation_of(page)

    order = to_dict(next(o for o in demo_orders(dt.date.today()) if o.customer_id == "c1001"))
    card = {"order_id": order["order_id"], "status": order["status"], "status_label": "运输中",
            "created_at": str(order["created_at"])[:10], "total": 899.0,
            "items": [{"name": i["name"], "sku": i.get("sku"), "price": i["price"], "quantity": i["quantity"]}
                      for i in order["items"]],
            "payload": "/inform" + json.dumps({"order_id": order["order_id"]})}
    await inject(stack, conversation, {"text": "您要办理哪一单？", "buttons": [
        {"title": "碎花连衣裙那单", "payload": card["payload"]}, {"title": "都不是", "payload": "/deny"}]})
    await chat.get_by_role("button", name="碎花连衣裙那单").click()
    await expect(chat.locator(".xb-user .xb-bubble").last).to_have_text("碎花连衣裙那单")

    photo = tmp_path / "photo.png"
    photo.write_bytes(PNG)
    await chat.locator("input[type=file]").set_input_files(str(photo))
    await page.wait_for_timeout(2000)  # uploaded, and the bot has answered the photo

    await inject(stack, conversation, {"text": "您的订单：", "custom": {"type": "order_cards", "orders": [card]}})
    long_text = "这是一段很长的说明文字，用来让聊天记录可以滚动。" * 4
    await inject(stack, conversation, *[{"text": f"{i}. {long_text}"} for i in range(8)])
    await inject(stack, conversation, {"text": "请问您是要退货吗？", "buttons": [
        {"title": "是的，退货", "payload": "/affirm"}, {"title": "不是", "payload": "/deny"}]})
    await expect(chat.get_by_role("button", name="是的，退货")).to_be_enabled(timeout=15000)

    log = chat.locator(".xb-log")
    await log.evaluate("log => { log.scrollTop = log.scrollHeight / 3; log.dispatchEvent(new Event('scroll')); }")
    where = await log.evaluate("log => log.scrollHeight - log.scrollTop")  # from the latest message
    assert await log.evaluate("log => log.scrollTop") > 100

    await page.reload()
    chat = page.get_by_role("dialog", name="小保 · 智能客服")
    await expect(chat).to_be_visible(timeout=15000)  # the chat the shopper was in reopens
    log = chat.locator(".xb-log")
    await expect(log).to_contain_text("请问您是要退货吗？", timeout=15000)
    # Taps read as what was tapped, never as payloads.
    await expect(chat.locator(".xb-user .xb-bubble", has_text="碎花连衣裙那单")).to_have_count(1)
    await expect(log).not_to_contain_text("/inform")
    await expect(chat.locator(".xb-user img")).to_have_count(1)
    assert await chat.locator(".xb-user img").evaluate("img => img.complete && img.naturalWidth > 0")
    # The choices since the shopper's last message are live (the order card, the last question's
    # buttons), as they were before the reload; answered ones are shown, greyed out.
    await expect(chat.locator(".xb-order")).to_have_count(1)
    await expect(chat.locator(".xb-order")).to_be_enabled()
    await expect(chat.get_by_role("button", name="都不是")).to_be_disabled()
    await expect(chat.locator(".xb-order img")).to_have_attribute("src", re.compile(r"products/SKU-\d+\.svg$"))
    # Timestamps on every message.
    times = await chat.locator(".xb-time").all_inner_texts()
    assert times and all(re.fullmatch(r"(\d+月\d+日 )?\d\d:\d\d", t) for t in times), times
    # Where the shopper was, not the top.
    restored = await log.evaluate("log => log.scrollHeight - log.scrollTop")
    assert abs(restored - where) < 40 and await log.evaluate("log => log.scrollTop") > 100, (restored, where)

    await chat.get_by_role("button", name="是的，退货").click()
    await expect(chat.locator(".xb-user .xb-bubble").last).to_have_text("是的，退货")
    await expect(chat.get_by_role("button", name="不是", exact=True)).to_be_disabled()

    # An order card is one button, shown as 「订单 …」 when tapped; a photo shows as a thumbnail at once.
    await inject(stack, conversation, {"text": "请选择要查询的订单", "custom": {"type": "order_cards", "orders": [card]}})
    await chat.locator(".xb-order").last.click()
    await expect(chat.locator(".xb-user .xb-bubble").last).to_have_text("订单 " + order["order_id"])
    box = await chat.locator(".xb-order").last.bounding_box()
    assert box["height"] >= 44
    await chat.locator("input[type=file]").set_input_files(str(photo))
    await expect(chat.locator(".xb-user img")).to_have_count(2, timeout=15000)


@needs_chromium
async def test_a_reload_on_the_phone_reopens_at_the_latest_message(stack, demo, console, browser):
    from playwright.async_api import expect

    web_url, _agent = console
    page, chat = await open_chat(browser, web_url, PHONE)
    await say_and_wait(chat, "你好")
    conversation = await conversation_of(page)
    await inject(stack, conversation, *[{"text": f"第{i}条：" + "很长的回答。" * 20} for i in range(10)])
    await expect(chat.locator(".xb-log")).to_contain_text("第9条", timeout=15000)
    await page.reload()
    await page.wait_for_timeout(2000)  # the history has arrived
    chat = page.get_by_role("dialog", name="小保 · 智能客服")
    if not await chat.is_visible():
        await page.get_by_role("button", name="在线客服").click()
    await expect(chat.locator(".xb-log")).to_contain_text("第9条", timeout=15000)
    await expect(chat.locator(".xb-bubble", has_text="第9条")).to_be_in_viewport()


# --- 8: accessibility for older shoppers -----------------------------------------------------


def too_small(boxes):
    return [b for b in boxes if b["w"] < 44 or b["h"] < 44]


TARGETS = """panel => [...panel.querySelectorAll('button, label.xb-file, textarea, summary')]
  .filter(e => e.offsetParent !== null)
  .map(e => { const r = e.getBoundingClientRect(); return { name: e.getAttribute('aria-label') || e.textContent.trim(),
                                                            w: r.width, h: r.height }; })"""
FONTS = """panel => [...panel.querySelectorAll('*')]
  .filter(e => e.offsetParent !== null && [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())
               || e.matches('textarea'))
  .map(e => ({ text: (e.textContent || e.getAttribute('aria-label')).trim().slice(0, 20),
               size: parseFloat(getComputedStyle(e).fontSize) }))"""


@needs_chromium
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_the_widget_meets_the_elder_friendly_guidance(stack, demo, console, browser, viewport):
    from playwright.async_api import expect

    web_url, _agent = console
    page, chat = await open_chat(browser, web_url, viewport)
    panel = page.locator(".xb-panel")
    await say(chat, "七天无理由退货怎么算")
    await expect(chat.locator(".xb-cite summary").first).to_be_visible(timeout=30000)

    for mode in ("normal", "大字"):
        if mode == "大字":
            await chat.get_by_role("button", name="大字").click()
        assert await axe_serious(page) == [], mode
        assert too_small(await panel.evaluate(TARGETS)) == [], mode
        close = await chat.get_by_role("button", name="关闭").bounding_box()
        assert close["width"] >= 44 and close["height"] >= 44
    small = [f for f in await panel.evaluate(FONTS) if f["size"] < 24]
    assert small == [], small  # 大字: body and controls at 18pt (24px) or more
    for control in ("发送", "图片", "查物流"):
        size = await chat.get_by_text(control, exact=True).first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
        assert size >= 24, control
    assert await chat.get_by_label("输入您的问题").evaluate("e => parseFloat(getComputedStyle(e).fontSize)") >= 24

    # 图片 shows where the keyboard is.
    await chat.get_by_label("输入您的问题").focus()
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.type") == "file"
    ring = await chat.locator("label.xb-file").evaluate("e => getComputedStyle(e).outlineStyle")
    assert ring != "none"

    # A quick reply chosen by keyboard, then Esc: the chat closes.
    quick = chat.locator(".xb-bot .xb-buttons button").last
    shown = await quick.inner_text()
    await quick.focus()
    await page.keyboard.press("Enter")
    await expect(chat.locator(".xb-user .xb-bubble").last).to_have_text(shown, timeout=5000)
    await page.keyboard.press("Escape")
    await expect(chat).to_be_hidden()
    await expect(page.get_by_role("button", name="在线客服")).to_be_focused()

    # The welcome: a quick menu and 猜你想问, whose 维权咨询 lists the rights topics.
    await page.get_by_role("button", name="在线客服").click()
    await expect(chat.get_by_role("button", name="查物流")).to_be_visible()
    await expect(chat.locator(".xb-guess button")).to_have_count(5)
    await chat.get_by_role("button", name="维权咨询").click()
    await expect(chat.locator(".xb-log")).to_contain_text("您想了解哪方面的权益", timeout=5000)
    await expect(chat.locator(".xb-bot").last.get_by_role("button")).not_to_have_count(0)
