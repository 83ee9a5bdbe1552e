"""The axe-core check itself: it finds what it should on a bad page and nothing on a good one,
also under a Content-Security-Policy that forbids inline scripts (as our pages send)."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.axe import axe_serious
from tests.integration.conftest import CHROMIUM, CHROMIUM_ARGS, needs_chromium

pytestmark = [pytest.mark.integration, needs_chromium]

BAD = ('<html lang="zh-CN"><head><title>坏页面</title></head><body><main><button></button>'
       '<p style="color:#ccc;background:#fff">对比度太低</p><img src="x.png"></main></body></html>')
GOOD = ('<html lang="zh-CN"><head><meta http-equiv="Content-Security-Policy" content="default-src \'self\'">'
        '<title>好页面</title></head><body><main><button>确定</button><p>正文</p></main></body></html>')


def check(html: str):
    from playwright.async_api import async_playwright

    async def run():
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page()
                await page.set_content(html)
                return await axe_serious(page)
            finally:
                await browser.close()

    return asyncio.run(run())


def test_axe_reports_unnamed_buttons_missing_alt_text_and_low_contrast():
    assert {v["id"] for v in check(BAD)} == {"button-name", "image-alt", "color-contrast"}


def test_axe_runs_under_a_strict_csp_and_passes_a_clean_page():
    assert check(GOOD) == []
