"""Web-chat routes on the web app: the demo storefront, history, and photo uploads."""

from __future__ import annotations

import re

import pytest
from aiohttp import FormData
from cryptography.fernet import Fernet

from bot.console.app import ConsoleConfig, create_app
from bot.identity import verify_customer_token
from bot.settings import Settings
from tests.console.test_console import RASA_TOKEN, FakeRasa

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.fixture
async def web(redis_url, aiohttp_server, aiohttp_client, tmp_path):
    rasa = FakeRasa()
    rasa_server = await aiohttp_server(rasa.app())
    settings = Settings.from_env({"XIAOBAO_VAR_DIR": str(tmp_path), "STORE_SIGNING_SECRET": "shop-secret",
                                 "DEMO": "1"})
    config = ConsoleConfig(redis_url=redis_url, rasa_url=str(rasa_server.make_url("")), rasa_token=RASA_TOKEN,
                           session_key=Fernet.generate_key(), settings=settings, rasa_public_url="http://127.0.0.1:5999")
    return await aiohttp_client(create_app(config)), rasa


async def test_storefront_embeds_the_widget_with_a_signed_token(web):
    client, _ = web
    page = await client.get("/shop?customer=c1001")
    html = await page.text()
    tag = re.search(r'<script src="/widget/xiaobao.js" data-socket-url="([^"]+)" data-customer-token="([^"]*)"', html)
    assert tag.group(1) == "http://127.0.0.1:5999"
    assert verify_customer_token(tag.group(2), "shop-secret") == "c1001"
    assert "connect-src 'self' http://127.0.0.1:5999 ws://127.0.0.1:5999" in page.headers["Content-Security-Policy"]
    anonymous = await (await client.get("/shop")).text()
    assert 'data-customer-token=""' in anonymous


async def test_widget_files_are_served_without_login(web):
    client, _ = web
    for path in ("/widget/xiaobao.js", "/widget/xiaobao.css", "/widget/vendor/socket.io.min.js"):
        assert (await client.get(path)).status == 200


async def test_history_lists_the_conversation_for_its_signed_session_only(web):
    from bot.webchat.conversation_ids import sign_session

    client, rasa = web
    token = sign_session("a" * 32, "shop-secret")  # what the socket.io channel issues (same secret)
    rasa.events["web:" + "a" * 32] = [
        {"event": "user", "text": "你好", "timestamp": 1.0},
        {"event": "bot", "text": "您好", "data": {"buttons": [{"title": "好", "payload": "/affirm"}]}},
        {"event": "user", "text": "/affirm"},
        {"event": "user", "text": "", "metadata": {"attachments": ["http://shop/uploads/a.png"]}},
        {"event": "bot", "text": "👩‍💼 人工客服alice：您好", "metadata": {"sent_by": "agent"}},
        {"event": "bot", "text": "请选择", "data": {"custom": {"type": "handoff_status", "state": "queued"}}},
    ]
    history = await (await client.get("/chat/history?session_id=" + token)).json()
    # A tap reads as the title of the tapped button, never its payload; photos and custom payloads stay.
    assert [(m["from"], m["text"], m["tap"]) for m in history["messages"]] == [
        ("user", "你好", False), ("bot", "您好", False), ("user", "好", True), ("user", "", False),
        ("agent", "👩‍💼 人工客服alice：您好", False), ("bot", "请选择", False)]
    assert history["messages"][0]["at"] == 1.0 and history["messages"][1]["buttons"][0]["payload"] == "/affirm"
    assert history["messages"][3]["photos"] == ["http://shop/uploads/a.png"]
    assert history["messages"][5]["custom"]["state"] == "queued"
    assert (await client.get("/chat/history?session_id=../../x")).status == 400
    assert (await client.get("/chat/history?session_id=" + "a" * 32)).status == 400  # the id without its signature


async def test_photo_upload_checks_type_and_size(web):
    client, _ = web
    form = FormData()
    form.add_field("image", PNG, filename="a.png", content_type="image/png")
    uploaded = await (await client.post("/chat/upload", data=form)).json()
    assert re.search(r"/uploads/[0-9a-f]{32}\.png$", uploaded["url"])
    assert (await client.get(uploaded["url"].split(str(client.make_url("")).rstrip("/"))[-1])).status == 200

    fake = FormData()
    fake.add_field("image", b"<html>not an image</html>", filename="a.png", content_type="image/png")
    assert (await client.post("/chat/upload", data=fake)).status == 415
    huge = FormData()
    huge.add_field("image", PNG + b"\0" * (5 * 1024 * 1024), filename="big.png", content_type="image/png")
    assert (await client.post("/chat/upload", data=huge)).status == 413
    assert (await client.get("/uploads/passwd")).status == 404
    assert (await client.get("/uploads/" + "0" * 32 + ".png")).status == 404
