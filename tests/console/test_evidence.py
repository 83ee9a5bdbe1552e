"""Agents see the evidence pack (issue 12): photo thumbnails served by the console to logged-in
agents only, the order, and the knowledge-base answers given, next to the transcript."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import pytest
from cryptography.fernet import Fernet
from PIL import Image

from bot.console.app import SERVICES, ConsoleConfig, create_app
from bot.console.views import THUMBNAIL_PX
from bot.knowledge.kb import load_entries
from bot.orders.demo import demo_orders
from bot.orders.models import to_dict
from bot.settings import Settings
from tests.console.test_console import RASA_TOKEN, FakeRasa, login
from tests.integration.conftest import CHROMIUM, CHROMIUM_ARGS, needs_chromium

PASSWORD = "correct horse battery"


def image_bytes(kind: str, size=(800, 600), colour=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, kind)
    return out.getvalue()


@pytest.fixture
async def evidence_env(redis_url, aiohttp_server, aiohttp_client, tmp_path):
    rasa = FakeRasa()
    rasa_server = await aiohttp_server(rasa.app())
    config = ConsoleConfig(redis_url=redis_url, rasa_url=str(rasa_server.make_url("")), rasa_token=RASA_TOKEN,
                           session_key=Fernet.generate_key(), poll_interval_s=0.05, sla_interval_s=3600,
                           settings=Settings.from_env({"XIAOBAO_VAR_DIR": str(tmp_path)}))
    app = create_app(config)
    client = await aiohttp_client(app)
    services = app[SERVICES]
    agent = f"ev{uuid.uuid4().hex[:6]}"
    await services.agents.add(agent, PASSWORD)

    uploads = tmp_path / "uploads"
    uploads.mkdir()
    web_photo, wechat_photo = f"{uuid.uuid4().hex}.png", f"{uuid.uuid4().hex}.jpg"
    (uploads / web_photo).write_bytes(image_bytes("PNG"))
    (uploads / wechat_photo).write_bytes(image_bytes("JPEG", colour=(30, 30, 200)))
    (tmp_path / "secret.png").write_bytes(b"not for shoppers or agents")

    entries = load_entries()
    rights = next(e for e in entries if e.kind == "rights" and e.citations)
    policy = next(e for e in entries if e.kind == "policy")
    order = to_dict(demo_orders(dt.date(2026, 11, 28))[0])
    sender = f"wx-{uuid.uuid4().hex[:8]}"
    rasa.events[sender] = [{"event": "user", "text": "耳机坏了，我要投诉", "timestamp": 1.0},
                           {"event": "bot", "text": rights.answer, "timestamp": 2.0,
                            "data": {"custom": {"type": "rights_answer", "entry_id": rights.id,
                                                "citations": [c.payload() for c in rights.citations]}}}]
    evidence = {
        "order": order,
        "photos": [f"photo:http://127.0.0.1:8000/uploads/{web_photo}", f"photo:wechat-media:{wechat_photo}",
                   "photo:https://elsewhere.example/x.jpg", "photo:http://x/uploads/../secret.png"],
        "transcript": [],
        "kb_answers": [{"type": "rights_answer", "entry_id": rights.id, "confidence": 0.9,
                        "citations": [c.payload() for c in rights.citations]},
                       {"type": "policy_answer", "entry_id": policy.id, "confidence": 0.8}],
    }
    ticket, _ = await services.tickets.create(sender, "complaint", "normal", "wechat", "耳机坏了",
                                              customer=order["customer_id"], order_id=order["order_id"],
                                              evidence=evidence)
    return {"client": client, "ticket": ticket, "agent": agent, "rights": rights, "policy": policy,
            "order": order, "uploads": uploads, "web_photo": web_photo, "wechat_photo": wechat_photo}


async def test_the_conversation_view_carries_the_evidence_pack(evidence_env):
    client, ticket, rights, policy = (evidence_env[k] for k in ("client", "ticket", "rights", "policy"))
    assert await login(client, evidence_env["agent"], PASSWORD)
    view = await (await client.get(f"/api/tickets/{ticket.id}")).json()
    evidence = view["evidence"]

    assert [p["available"] for p in evidence["photos"]] == [True, True, False, False]
    assert evidence["photos"][0]["thumbnail"] == f"/api/tickets/{ticket.id}/photos/0?thumbnail=1"
    assert evidence["photos"][2]["url"] is None
    order = evidence_env["order"]
    assert evidence["order"]["order_id"] == order["order_id"]
    assert [i["name"] for i in evidence["order"]["items"]] == [i["name"] for i in order["items"]]
    assert evidence["kb_answers"][0]["title"] == rights.title
    assert evidence["kb_answers"][0]["citations"] == [f"《{c.law}》第{c.article}条" for c in rights.citations]
    assert evidence["kb_answers"][1] == {**evidence["kb_answers"][1], "title": policy.title, "kind": "policy",
                                         "citations": []}
    assert "transcript" not in evidence  # the transcript is the live one, shown once
    assert view["transcript"][0]["text"] == "耳机坏了，我要投诉"

    page = await (await client.get(f"/tickets/{ticket.id}")).text()
    assert 'id="evidence-photos"' in page and 'id="evidence-answers"' in page


async def test_photos_are_served_to_logged_in_agents_only(evidence_env):
    client, ticket = evidence_env["client"], evidence_env["ticket"]
    photo = f"/api/tickets/{ticket.id}/photos/0"
    assert (await client.get(photo)).status == 401
    assert (await client.get(photo + "?thumbnail=1")).status == 401
    assert await login(client, evidence_env["agent"], PASSWORD)

    full = await client.get(photo)
    assert full.status == 200 and full.headers["Content-Type"] == "image/png"
    assert full.headers["X-Content-Type-Options"] == "nosniff" and full.headers["Cache-Control"].startswith("private")
    assert await full.read() == (evidence_env["uploads"] / evidence_env["web_photo"]).read_bytes()

    for index in (0, 1):
        small = await client.get(f"/api/tickets/{ticket.id}/photos/{index}?thumbnail=1")
        assert small.status == 200 and small.headers["Content-Type"] == "image/jpeg"
        with Image.open(io.BytesIO(await small.read())) as image:
            assert max(image.size) <= THUMBNAIL_PX and image.size[0] > 0

    # Not stored here, not a stored file name, not in the pack, not a number, not this ticket.
    for path in (f"/api/tickets/{ticket.id}/photos/2", f"/api/tickets/{ticket.id}/photos/3",
                 f"/api/tickets/{ticket.id}/photos/4", f"/api/tickets/{ticket.id}/photos/-1",
                 f"/api/tickets/{ticket.id}/photos/x", "/api/tickets/T-nonexistent/photos/0"):
        assert (await client.get(path)).status == 404, path


@needs_chromium
async def test_an_agent_sees_thumbnails_order_and_answers_in_the_browser(evidence_env):
    from playwright.async_api import async_playwright, expect

    client, ticket, rights = evidence_env["client"], evidence_env["ticket"], evidence_env["rights"]
    base = str(client.make_url("")).rstrip("/")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = await browser.new_page()
            await page.goto(base + "/login")
            await page.get_by_label("用户名").fill(evidence_env["agent"])
            await page.get_by_label("密码").fill(PASSWORD)
            await page.get_by_role("button", name="登录").click()
            await page.wait_for_url(base + "/")
            await page.goto(f"{base}/tickets/{ticket.id}")
            await expect(page.locator("#transcript")).to_contain_text("我要投诉", timeout=15000)
            thumbnails = page.locator("#evidence-photos img")
            await expect(thumbnails).to_have_count(2, timeout=15000)
            await page.wait_for_function(
                "() => [...document.querySelectorAll('#evidence-photos img')].every(i => i.complete && i.naturalWidth > 0)",
                timeout=15000)
            widths = await thumbnails.evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
            assert all(0 < w <= THUMBNAIL_PX for w in widths)
            await expect(page.locator("#evidence-photos")).to_contain_text("未保存在本机")
            await expect(page.locator("#evidence-order")).to_contain_text(evidence_env["order"]["order_id"])
            await expect(page.locator("#evidence-answers")).to_contain_text(rights.title)
            await expect(page.locator("#evidence-answers")).to_contain_text(f"《{rights.citations[0].law}》")
        finally:
            await browser.close()
