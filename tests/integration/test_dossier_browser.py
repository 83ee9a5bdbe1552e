"""In headless Chromium (Debian's, via Playwright): an agent on a ticket page exports the complaint
dossier, which downloads as JSON, and opens its printable page (issue 15, part 5)."""

from __future__ import annotations

import json

from tests.console.test_regulators import NAME, PASSWORD, PHONE, SECTIONS, reg_env  # noqa: F401
from tests.integration.conftest import CHROMIUM, CHROMIUM_ARGS, needs_chromium


@needs_chromium
async def test_an_agent_downloads_the_dossier_and_opens_the_printable_page(reg_env, tmp_path):  # noqa: F811
    from playwright.async_api import async_playwright, expect

    client, ticket = reg_env["client"], reg_env["ticket"]
    base = str(client.make_url("")).rstrip("/")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = await browser.new_context(accept_downloads=True)
            page = await context.new_page()
            await page.goto(base + "/login")
            await page.get_by_label("用户名").fill(reg_env["agent"])
            await page.get_by_label("密码").fill(PASSWORD)
            await page.get_by_role("button", name="登录").click()
            await page.wait_for_url(base + "/")
            await page.goto(f"{base}/tickets/{ticket.id}")

            async with page.expect_download() as download_info:
                await page.get_by_role("link", name="导出投诉材料（12315/消协）").click()
            download = await download_info.value
            assert download.suggested_filename == f"dossier-{ticket.id}.json"
            saved = tmp_path / download.suggested_filename
            await download.save_as(saved)
            dossier = json.loads(saved.read_text(encoding="utf-8"))
            assert set(dossier) == SECTIONS and dossier["ticket"]["id"] == ticket.id
            assert dossier["generated_by"] == reg_env["agent"] and dossier["complainant"]["masked"] is True
            assert PHONE not in saved.read_text(encoding="utf-8")

            async with context.expect_page() as opened:
                await page.locator("#print-dossier").click()
            printable = await opened.value
            await printable.wait_for_load_state()
            await expect(printable.locator("h1")).to_have_text("消费者投诉材料")
            await expect(printable.locator("#complainant-phone")).to_have_text("138****1234")
            await expect(printable.locator("#demand")).to_have_text("退款")
            assert NAME not in await printable.content()
            # The print button calls window.print from the static script (no inline script under the CSP).
            await printable.evaluate("() => { window.__printed = 0; window.print = () => { window.__printed += 1; }; }")
            await printable.get_by_role("button", name="打印 / 另存为PDF").click()
            assert await printable.evaluate("() => window.__printed") == 1
            # Print media hides the toolbar and the consent form.
            await printable.emulate_media(media="print")
            await expect(printable.locator(".toolbar")).to_be_hidden()
            await expect(printable.locator("#consent")).to_be_hidden()
            await expect(printable.locator("#dossier")).to_be_visible()
        finally:
            await browser.close()
