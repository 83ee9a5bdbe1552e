"""Escalation end to end: a shopper on socket.io, an agent in the console in headless Chromium."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
import socketio

from tests.integration.conftest import (
    AGENT_PASSWORD as PASSWORD,
    CHROMIUM,
    CHROMIUM_ARGS,
    matches_response,
    needs_chromium,
    stored_open_ticket,
)

pytestmark = pytest.mark.integration


class ShopperSocket:
    """A socket.io shopper on its own event loop thread, as a browser widget would be."""

    def __init__(self, url: str) -> None:
        self.url, self.session_id = url, uuid.uuid4().hex
        self.received: list = []
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.client = socketio.AsyncClient(reconnection=False)
        self.client.on("bot_uttered", self.received.append)
        self._run(self.client.connect(url, transports=["websocket"]))
        self._run(self.client.emit("session_request", {"session_id": self.session_id}))

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def say(self, text: str) -> None:
        self._run(self.client.emit("user_uttered", {"message": text, "session_id": self.session_id}))

    def wait_for(self, predicate, timeout: float = 30):
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in list(self.received) if predicate(m.get("text") or "")]
            if found:
                return found[-1]
            time.sleep(0.1)
        raise AssertionError(f"shopper never got it; received: {[m.get('text') for m in self.received]}")

    def wait_for_custom(self, kind: str, timeout: float = 30):
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in list(self.received) if (m.get("custom") or {}).get("type") == kind]
            if found:
                return found[-1]
            time.sleep(0.1)
        raise AssertionError(f"shopper never got a {kind} payload; received: {self.received}")

    def close(self) -> None:
        self._run(self.client.disconnect())
        self.loop.call_soon_threadsafe(self.loop.stop)


@needs_chromium
def test_shopper_escalates_agent_replies_and_hands_back(stack, console):
    from playwright.sync_api import expect, sync_playwright

    console_url, agent = console
    shopper = ShopperSocket(f"http://127.0.0.1:{stack.rasa_port}")
    try:
        shopper.say("转人工")
        queued = shopper.wait_for(lambda t: "工单号" in t)
        ticket_id = queued["text"].split("工单号 ")[1].split("。")[0]

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page()
            page.goto(console_url + "/login")
            page.get_by_label("用户名").fill(agent)
            page.get_by_label("密码").fill(PASSWORD)
            page.get_by_role("button", name="登录").click()
            expect(page.locator(f'[data-ticket-id="{ticket_id}"]')).to_be_visible(timeout=15000)  # live queue

            page.goto(f"{console_url}/tickets/{ticket_id}")
            expect(page.locator("#transcript")).to_contain_text("转人工", timeout=15000)
            page.get_by_role("button", name="接入").click()
            expect(page.locator("#status")).to_have_text("已完成")
            shopper.wait_for(lambda t: t == f"客服「{agent}」已接入，正在为您处理")  # no display name: the login
            page.get_by_label("回复顾客").fill("您好，我是客服小王，马上帮您处理")
            page.get_by_role("button", name="发送").click()
            shopper.wait_for(lambda t: "我是客服小王" in t)

            shopper.say("好的 订单是昨天买的耳机")
            expect(page.locator("#transcript")).to_contain_text("订单是昨天买的耳机", timeout=15000)

            page.get_by_role("button", name="解决并交还小保").click()
            expect(page.locator("#status")).to_have_text("已完成")
            shopper.wait_for(lambda t: t == "本次人工服务已结束，小保会继续为您服务。")
            # Then the survey (contract A), and not the old rating buttons as well.
            shopper.wait_for_custom("survey")
            states = [m["custom"]["state"] for m in shopper.received if (m.get("custom") or {}).get("type") == "handoff_status"]
            assert [s for s in states if s != "queued"] == ["claimed", "ended"]
            assert not [m for m in shopper.received if matches_response(m.get("text") or "", "utter_ask_rating")]
            browser.close()

        shopper.say('/rate{"csat": 5}')
        shopper.wait_for(lambda t: matches_response(t, "utter_thanks_for_rating"))
        rated = asyncio.run(stored_open_ticket(stack.redis_url, ticket_id=ticket_id))
        assert rated.rating == 5 and rated.status == "resolved" and rated.assignee == agent
        assert [t["text"] for t in rated.evidence["transcript"] if t["from"] == "user"] == ["转人工"]

        shopper.say("你好")
        shopper.wait_for(lambda t: matches_response(t, "utter_greet"))  # the bot answers again
    finally:
        shopper.close()
