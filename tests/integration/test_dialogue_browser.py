"""Issue 16 in the shopper's web chat, in headless Chromium (Debian's chromium) against the real stack,
as a shopper meets it on /shop (guest) or /shop?customer=c1001 (logged in):
(1) returns never lock onto the wrong order: 「我要退货」 after tracking a parcel asks which order,
「不是这单」 picks again without a person, one item of a parcel in transit says the whole parcel is
intercepted and shows the refund, old or forged buttons are refused politely, and a guest's wrong
phone digits are asked again alone;
(2) a question is answered before any form, with 「需要我帮您申请吗？」, and 「客服电话多少」 gets
the number, not a ticket;
(7) after a missed SLA the number the shopper leaves is kept on the ticket and confirmed masked,
with the real place in the queue, and the bot does not fall silent.

The tests tap text buttons or type, so they work whether or not the widget draws order cards.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re

import pytest
import redis.asyncio as aioredis

from bot.handoff.tickets import TicketStore
from bot.orders.demo import demo_orders
from bot.orders.models import SHANGHAI
from tests.integration.conftest import needs_chromium, stored_open_ticket

pytestmark = pytest.mark.integration
DESKTOP = {"width": 1280, "height": 800}
REPLY_S = 30000  # ms: a reply may wait for the action server's first knowledge-base load


def orders():
    return {o.order_id[-2:]: o for o in demo_orders(dt.datetime.now(SHANGHAI).date())}


class Chat:
    """The widget as a shopper uses it: type, tap a button, read what the bot said since."""

    def __init__(self, page, chat):
        self.page, self.chat = page, chat

    @classmethod
    async def open(cls, browser, web_url, customer=None):
        page = await browser.new_page(viewport=DESKTOP)
        await page.goto(f"{web_url}/shop" + (f"?customer={customer}" if customer else ""))
        await page.get_by_role("button", name="在线客服").click()
        chat = page.get_by_role("dialog", name="小保 · 智能客服")
        await chat.wait_for()
        return cls(page, chat)

    def bot_texts(self):
        """The bot's messages, each with its buttons' titles."""
        return self.chat.locator(".xb-bot")

    async def _after(self, act, expect_text=None):
        """Runs `act` and returns the text of every bot bubble that appeared after it."""
        from playwright.async_api import expect

        before = await self.bot_texts().count()
        await act()
        await expect(self.bot_texts()).not_to_have_count(before, timeout=REPLY_S)
        if expect_text:
            await expect(self.chat.locator(".xb-log")).to_contain_text(expect_text, timeout=REPLY_S)
        await self.page.wait_for_timeout(1200)  # the rest of the bot's turn
        return "\n".join((await self.bot_texts().all_inner_texts())[before:])

    async def say(self, text, expect_text=None):
        async def act():
            box = self.chat.get_by_label("输入您的问题")
            await box.fill(text)
            await box.press("Enter")

        return await self._after(act, expect_text)

    async def tap(self, title_part, expect_text=None):
        """Taps the newest enabled button whose title contains `title_part`."""
        button = self.chat.locator("button:not([disabled])", has_text=title_part).last
        return await self._after(button.click, expect_text)

    async def conversation(self):
        for _ in range(100):
            session = await self.page.evaluate("localStorage.getItem('xiaobao.session')")
            if session:
                return "web:" + session.split(".")[0]
            await self.page.wait_for_timeout(100)
        raise AssertionError("the widget never got a session")


def inform(**entities):
    return "/inform" + json.dumps(entities, ensure_ascii=False)


# --- 1: returns lock onto the right order ----------------------------------------------------


@needs_chromium
async def test_a_return_after_tracking_asks_which_order_switches_and_says_the_intercept(stack, demo, console, browser):
    web_url, _agent = console
    chat = await Chat.open(browser, web_url, customer="c1001")
    headphones, parcel = orders()["12"], orders()["16"]

    await chat.say("我的快递到哪了", expect_text="运输中")
    tracked = await chat.tap("运输中", expect_text=parcel.order_id)
    assert "揽收" in tracked

    # 「我要退货」 right after tracking: which order? (not the tracked parcel's items)
    asked = await chat.say("我要退货")
    assert "请选择要办理的订单" in asked and "这笔订单里有以下商品" not in asked
    # each order is offered once, as a card (the same choices as text buttons are for REST and WeChat)
    assert await chat.chat.locator(".xb-order", has_text=headphones.order_id).count() == 1
    assert await chat.chat.locator(".xb-buttons button", has_text=headphones.order_id).count() == 0

    items = await chat.tap("降噪蓝牙耳机")
    assert "降噪蓝牙耳机" in items and "这笔订单里有以下商品" in items

    # 「不是这单」 picks the order again inside the form: no person, no silence
    again = await chat.say("不是这单")
    assert "换一个订单" in again and "请选择要办理的订单" in again
    assert "工单" not in again and "人工" not in again

    await chat.tap("轻薄羽绒服", expect_text="这笔订单里有以下商品")
    await chat.tap("羊毛围巾", expect_text="退货的原因")
    confirm = await chat.tap("七天无理由", expect_text="拦截")
    assert "拦截整个包裹" in confirm and "轻薄羽绒服" in confirm and "羊毛围巾" in confirm
    assert "预计退款：¥858.00" in confirm

    # A forged order button (typed, as any client can) while the intercept is asked: refused, asked again
    forged = await chat.say(inform(order_id=headphones.order_id), expect_text="这个按钮已经过期了")
    assert "这个按钮已经过期了" in forged and "拦截整个包裹" in forged and "明白了" not in forged

    done = await chat.tap("确认拦截整个包裹", expect_text="编号 R")
    assert "拦截" in done

    # The 「确认」 of the finished question, tapped again: a polite refusal, never 「明白了」
    stale = await chat.say("/affirm")
    assert "这个按钮已经过期了" in stale and "明白了" not in stale


@needs_chromium
async def test_a_guest_who_mistypes_the_phone_digits_is_asked_only_for_the_digits(stack, demo, console, browser):
    web_url, _agent = console
    chat = await Chat.open(browser, web_url)
    order = orders()["14"]  # not the order other tests guess digits for: the daily limit is per order
    assert "订单号" in await chat.say("我要退货", expect_text="订单号")
    assert "后四位" in await chat.say(order.order_id)
    wrong = await chat.say("0000")
    assert "对不上" in wrong and "后四位" in wrong
    items = await chat.say(order.phone[-4:])  # the order number is not asked again
    assert "这笔订单里有以下商品" in items and "无线鼠标" in items


# --- 2: questions are answered before any form -----------------------------------------------


@needs_chromium
async def test_a_guests_question_is_answered_first_and_the_phone_number_is_an_answer(stack, demo, console, browser):
    web_url, _agent = console
    chat = await Chat.open(browser, web_url)
    conversation = await chat.conversation()

    answer = await chat.say("收到5天了能退吗", expect_text="需要我帮您申请吗")
    assert "七日" in answer and "依据" in answer and "需要我帮您申请吗" in answer
    assert "订单号" not in answer

    later = await chat.say("退货的运费谁出")
    assert "订单号" not in later

    phone = await chat.say("客服电话多少", expect_text="400-000-0000")
    assert "工单" not in phone
    assert await stored_open_ticket(stack.redis_url, conversation) is None

    # Only 「需要」 starts the form (the offer of the first answer is answered here as the latest)
    await chat.say("收到5天了能退吗", expect_text="需要我帮您申请吗")
    started = await chat.tap("需要")
    assert started.count("订单号") == 1


# --- 7: the callback number after a missed SLA -----------------------------------------------


async def make_overdue(redis_url, ticket_id):
    """Moves the ticket's SLA due time into the past; the console's SLA watcher does the rest."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        key = f"xb:handoff:ticket:{ticket_id}"
        doc = json.loads(await client.hget(key, "doc"))
        past = (dt.datetime.now(SHANGHAI) - dt.timedelta(minutes=1)).isoformat()
        await client.hset(key, "doc", json.dumps({**doc, "sla_due": past}, ensure_ascii=False))
    finally:
        await client.aclose() if hasattr(client, "aclose") else await client.close()


async def ticket(redis_url, ticket_id):
    store = TicketStore.from_url(redis_url)
    try:
        return await store.get(ticket_id), await store.position(ticket_id)
    finally:
        await store.close()


@needs_chromium
async def test_after_a_missed_sla_the_callback_number_is_kept_and_the_bot_keeps_talking(stack, demo, console, browser):
    from playwright.async_api import expect

    web_url, _agent = console
    chat = await Chat.open(browser, web_url, customer="c1001")
    conversation = await chat.conversation()
    queued = await chat.say("转人工", expect_text="工单号")
    ticket_id = re.search(r"T\d{13}", queued).group(0)

    await make_overdue(stack.redis_url, ticket_id)
    log = chat.chat.locator(".xb-log")
    await expect(log).to_contain_text("回电", timeout=30000)  # the SLA notice asks for a number
    await expect(log).to_contain_text("排在第", timeout=5000)

    recorded = await chat.say("我的电话是13812345678", expect_text="138****5678")
    assert "13812345678" not in recorded
    stored, position = await ticket(stack.redis_url, ticket_id)
    assert stored.callback == "13812345678" and stored.sender_id == conversation
    assert f"第 {position} 位" in recorded

    status = await chat.say("转人工", expect_text="还在排队")
    assert "前面还有 0 位" not in status and f"第 {position} 位" in status
    # not silent afterwards: the bot still answers
    answer = await chat.say("七天无理由退货的运费谁出", expect_text="运费")
    assert answer.strip()

    # the ticket can be looked up by its number
    looked_up = await chat.say(f"查一下工单 {ticket_id}", expect_text=ticket_id)
    assert "排队中" in looked_up and "138****5678" in looked_up
