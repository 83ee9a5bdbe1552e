"""The storefront web chat in headless Chromium, against the real stack."""

from __future__ import annotations

import pytest

from tests.integration.conftest import CHROMIUM, CHROMIUM_ARGS, needs_chromium

pytestmark = pytest.mark.integration


@needs_chromium
def test_greet_ask_expand_a_citation_start_a_return_and_reload(stack, demo, console):
    from playwright.sync_api import expect, sync_playwright

    web_url, _agent = console
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 390, "height": 800})  # a phone-sized screen
        page.goto(web_url + "/shop?customer=c1001")
        page.get_by_role("button", name="在线客服").click()
        chat = page.get_by_role("dialog", name="小保 · 智能客服")
        expect(chat).to_be_visible()

        box = chat.get_by_label("输入您的问题")
        box.fill("你好")
        box.press("Enter")
        expect(chat.locator(".xb-bot .xb-bubble").first).to_contain_text("小保", timeout=30000)

        box.fill("网上买的裙子收到后不喜欢，七天内能不能退")
        box.press("Enter")
        citation = chat.locator(".xb-cite summary", has_text="《中华人民共和国消费者权益保护法》第二十五条")
        expect(citation).to_be_visible(timeout=30000)
        citation.click()
        expect(chat.locator(".xb-cite details[open] p").first).to_contain_text("经营者采用网络", timeout=5000)

        chat.get_by_role("button", name="需要", exact=True).click()  # 「需要我帮您申请吗？」
        expect(chat.locator(".xb-bubble", has_text="请选择要办理的订单")).to_be_visible(timeout=30000)
        expect(chat.locator(".xb-buttons button").first).to_be_visible()

        page.reload()  # the chat the shopper was in reopens by itself
        expect(page.get_by_role("dialog", name="小保 · 智能客服")).to_be_visible(timeout=15000)
        expect(page.locator(".xb-log")).to_contain_text("七天内能不能退", timeout=15000)
        expect(page.locator(".xb-log")).to_contain_text("请选择要办理的订单")
        browser.close()
