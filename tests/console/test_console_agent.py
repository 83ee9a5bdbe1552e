"""The agent console of issue 16 through aiohttp's test client (real Redis, a fake Rasa API):
the readable transcript and its photos, search, transfer to online agents, order actions, agent
typing, the shopper's presence, the handoff payloads, and logout. Attack tests for the photos
endpoint and the new POSTs."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import time
import uuid

import pytest
from cryptography.fernet import Fernet
from PIL import Image

from bot.console.app import SERVICES, ConsoleConfig, create_app
from bot.orders.models import SHANGHAI, Order, OrderItem
from bot.redis_url import async_redis
from bot.settings import Settings
from tests.console.test_console import RASA_TOKEN, FakeRasa, login

PASSWORD = "correct horse battery"


def png(colour=(200, 30, 30), size=(640, 480)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def headphones_photo() -> bytes:
    """A shopper's photo of broken headphones, drawn (for the transcript and the README screenshot)."""
    from PIL import ImageDraw

    image = Image.new("RGB", (640, 480), (236, 228, 214))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 360, 640, 480), fill=(196, 180, 160))  # the table
    draw.arc((170, 60, 470, 400), 180, 360, fill=(40, 40, 48), width=26)  # the headband
    for x in (150, 410):  # the ear cups
        draw.rounded_rectangle((x, 220, x + 80, 350), radius=28, fill=(52, 52, 60))
        draw.rounded_rectangle((x + 14, 236, x + 66, 334), radius=20, fill=(90, 90, 100))
    draw.line((455, 150, 430, 190, 462, 222, 440, 262), fill=(220, 40, 40), width=6)  # the crack
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def delivered_order(customer: str, days_ago: int = 2) -> Order:
    signed = dt.datetime.now(SHANGHAI) - dt.timedelta(days=days_ago)
    return Order(f"9{uuid.uuid4().int % 10**15:015d}", customer, "13800001234", "delivered", signed - dt.timedelta(days=2),
                 (OrderItem("i1", "降噪蓝牙耳机", "手机数码", 899.0), OrderItem("i2", "快充充电器", "手机数码", 99.0)),
                 signed_at=signed, carrier="顺丰速运", tracking_no="SF1")


def shipped_order(customer: str) -> Order:
    created = dt.datetime.now(SHANGHAI) - dt.timedelta(days=1)
    return Order(f"9{uuid.uuid4().int % 10**15:015d}", customer, "13800001234", "shipped", created,
                 (OrderItem("i1", "轻薄羽绒服", "服装鞋包", 699.0),), carrier="中通快递", tracking_no="ZT1")


@pytest.fixture
async def agent_env(redis_url, aiohttp_server, aiohttp_client, tmp_path):
    rasa = FakeRasa()
    rasa_server = await aiohttp_server(rasa.app())
    config = ConsoleConfig(redis_url=redis_url, rasa_url=str(rasa_server.make_url("")), rasa_token=RASA_TOKEN,
                           session_key=Fernet.generate_key(), poll_interval_s=0.05, sla_interval_s=3600,
                           settings=Settings.from_env({"XIAOBAO_VAR_DIR": str(tmp_path)}))
    app = create_app(config)
    client = await aiohttp_client(app)
    services = app[SERVICES]
    alice, bob = f"al{uuid.uuid4().hex[:6]}", f"bo{uuid.uuid4().hex[:6]}"
    await services.agents.add(alice, PASSWORD, display="小王")
    await services.agents.add(bob, PASSWORD, display="小李")

    uploads = tmp_path / "uploads"
    uploads.mkdir()
    photo = f"{uuid.uuid4().hex}.png"
    (uploads / photo).write_bytes(headphones_photo())
    (tmp_path / "secret.png").write_bytes(b"not a photo of this conversation")
    customer = f"c{uuid.uuid4().hex[:8]}"
    delivered, shipped = delivered_order(customer), shipped_order(customer)
    await services.orders.save_orders([delivered, shipped])
    sender = f"web:{uuid.uuid4().hex}"
    t0 = time.time() - 600  # ten minutes ago
    rasa.events[sender] = [
        {"event": "user", "text": "耳机坏了，看图", "timestamp": t0 + 40,
         "metadata": {"attachments": [f"http://127.0.0.1:8000/uploads/{photo}"]}},
        {"event": "bot", "text": "确认提交这个退货申请吗？", "timestamp": t0 + 80,
         "data": {"buttons": [{"title": "确认提交", "payload": "/affirm"}, {"title": "算了", "payload": "/deny"}]}},
        {"event": "user", "text": "/affirm", "timestamp": t0 + 120},
        {"event": "bot", "text": "您的订单：", "timestamp": t0 + 160,
         "data": {"custom": {"type": "order_cards", "orders": [
             {"order_id": delivered.order_id, "status": "delivered", "status_label": "已签收", "total": 998.0,
              "items": [{"name": "降噪蓝牙耳机"}], "payload": "/inform{}"}]}}},
        {"event": "bot", "text": "依法可以七天无理由退货。", "timestamp": t0 + 200,
         "data": {"custom": {"type": "rights_answer", "citations": [{"law": "中华人民共和国消费者权益保护法", "article": 25}]}}},
    ]
    handoff = [  # what the shopper saw around an earlier handoff
        {"event": "bot", "text": "正在为您转接人工客服", "timestamp": t0 + 240,
         "data": {"custom": {"type": "handoff_status", "state": "queued", "ticket_id": "T1", "position": 2, "eta_min": 6}}},
        {"event": "bot", "text": "请评价", "timestamp": t0 + 280, "data": {"custom": {"type": "survey", "ticket_id": "T1"}}},
        {"event": "user", "text": '/rate{"csat": 4, "resolved": true, "comment": "挺快"}', "timestamp": t0 + 320},
    ]
    rasa.events[f"{sender}-earlier"] = handoff
    ticket, _ = await services.tickets.create(sender, "complaint", "normal", "socketio", f"耳机坏了 {customer}",
                                              customer=customer, order_id=delivered.order_id)
    return {"client": client, "app": app, "services": services, "rasa": rasa, "alice": alice, "bob": bob,
            "ticket": ticket, "sender": sender, "customer": customer, "delivered": delivered, "shipped": shipped,
            "photo": photo, "uploads": uploads, "aiohttp_client": aiohttp_client, "redis_url": redis_url}


async def logged_in(env, name=None):
    csrf = await login(env["client"], name or env["alice"], PASSWORD)
    assert csrf
    return {"X-CSRF-Token": csrf}


async def claimed(env, headers):
    response = await env["client"].post(f"/api/tickets/{env['ticket'].id}/claim", headers=headers)
    assert response.status == 200


# -- the transcript ------------------------------------------------------------------------------
async def test_the_transcript_shows_titles_options_cards_photos_and_citations(agent_env):
    env = agent_env
    await logged_in(env)
    view = await (await env["client"].get(f"/api/tickets/{env['ticket'].id}")).json()
    photo_turn, offer, tap, cards, answer = view["transcript"]
    assert photo_turn["photos"] == [{"index": 0, "url": f"/api/tickets/{env['ticket'].id}/chat-photos/0",
                                     "thumbnail": f"/api/tickets/{env['ticket'].id}/chat-photos/0?thumbnail=1"}]
    assert [b["title"] for b in offer["buttons"]] == ["确认提交", "算了"]
    assert tap["from"] == "user" and tap["tap"] is True and tap["text"] == "确认提交"
    assert "/affirm" not in json.dumps(view["transcript"], ensure_ascii=False).replace('"payload": "/affirm"', "")
    assert cards["custom_line"].startswith("展示了订单卡片：订单 " + env["delivered"].order_id)
    assert "已签收" in cards["custom_line"] and "降噪蓝牙耳机" in cards["custom_line"]
    assert answer["citations"] == ["《中华人民共和国消费者权益保护法》第25条"]

    earlier, _ = await env["services"].tickets.create(f"{env['sender']}-earlier", "complaint", "normal", "socketio", "早先")
    view = await (await env["client"].get(f"/api/tickets/{earlier.id}")).json()
    queued, survey, rated = view["transcript"]
    assert queued["custom_line"] == "人工服务状态：排队中（第2位，预计约6分钟）"
    assert survey["custom_line"] == "请顾客评价本次服务（问题是否解决、1–5分、留言）"
    assert rated["tap"] is True and rated["text"] == "问题已解决，评分：4分，评价：挺快"


async def test_transcript_photos_for_logged_in_agents_only_by_ticket_and_index(agent_env):
    env = agent_env
    client, ticket = env["client"], env["ticket"]
    url = f"/api/tickets/{ticket.id}/chat-photos/0"
    assert (await client.get(url)).status == 401  # logged out
    await logged_in(env)
    full = await client.get(url)
    assert full.status == 200 and full.headers["Content-Type"] == "image/png"
    assert full.headers["X-Content-Type-Options"] == "nosniff"
    assert await full.read() == (env["uploads"] / env["photo"]).read_bytes()
    small = await client.get(url + "?thumbnail=1")
    assert small.status == 200 and small.headers["Content-Type"] == "image/jpeg"

    # Another conversation with two photos: its index 1 is not this ticket's.
    other_sender = f"web:{uuid.uuid4().hex}"
    other_photo = f"{uuid.uuid4().hex}.png"
    (env["uploads"] / other_photo).write_bytes(png((0, 0, 200)))
    env["rasa"].events[other_sender] = [{"event": "user", "text": "看", "timestamp": 1.0, "metadata": {
        "attachments": [f"http://x/uploads/{env['photo']}", f"http://x/uploads/{other_photo}"]}}]
    other, _ = await env["services"].tickets.create(other_sender, "complaint", "normal", "socketio", "另一位顾客")
    assert (await client.get(f"/api/tickets/{other.id}/chat-photos/1")).status == 200
    assert (await client.get(f"/api/tickets/{ticket.id}/chat-photos/1")).status == 404

    # References the shopper could forge are never followed: another folder, another site, a path.
    forged_sender = f"web:{uuid.uuid4().hex}"
    env["rasa"].events[forged_sender] = [{"event": "user", "text": "看", "timestamp": 1.0, "metadata": {
        "attachments": ["http://x/uploads/../secret.png", "https://elsewhere.example/a.png", "/etc/passwd",
                        f"file:///{env['uploads']}/{env['photo']}x"]}}]
    forged, _ = await env["services"].tickets.create(forged_sender, "complaint", "normal", "socketio", "伪造")
    for index in range(4):
        assert (await client.get(f"/api/tickets/{forged.id}/chat-photos/{index}")).status == 404

    for path in (f"/api/tickets/{ticket.id}/chat-photos/-1", f"/api/tickets/{ticket.id}/chat-photos/x",
                 f"/api/tickets/{ticket.id}/chat-photos/0x", f"/api/tickets/{ticket.id}/chat-photos/99999999",
                 f"/api/tickets/{ticket.id}/chat-photos/..%2F..%2Fsecret.png",
                 f"/api/tickets/{ticket.id}/chat-photos/%2e%2e", "/api/tickets/T-nonexistent/chat-photos/0",
                 f"/api/tickets/{ticket.id}/chat-photos/0/../../../secret.png"):
        response = await client.get(path)
        assert response.status == 404, path
        assert b"not a photo" not in await response.read()


# -- search ---------------------------------------------------------------------------------------
async def test_search_finds_open_and_resolved_tickets_and_customers(agent_env):
    env = agent_env
    client, services, customer = env["client"], env["services"], env["customer"]
    assert (await client.get("/api/search?q=x")).status == 401
    headers = await logged_in(env)
    resolved, _ = await services.tickets.create(f"web:{uuid.uuid4().hex}", "human_request", "normal", "socketio",
                                                f"发票抬头写错了 {customer}", customer=customer)
    await services.tickets.claim(resolved.id, env["alice"])
    await services.tickets.resolve(resolved.id, env["alice"])

    by_id = await (await client.get("/api/search", params={"q": env["ticket"].id})).json()
    assert [t["id"] for t in by_id["tickets"]] == [env["ticket"].id]
    by_text = await (await client.get("/api/search", params={"q": f"发票抬头写错了 {customer}"})).json()
    assert [(t["id"], t["status_label"]) for t in by_text["tickets"]] == [(resolved.id, "已解决")]
    by_customer = await (await client.get("/api/search", params={"q": customer})).json()
    assert {t["id"] for t in by_customer["tickets"]} == {env["ticket"].id, resolved.id}
    [person] = by_customer["customers"]
    assert person["customer_id"] == customer
    assert {o["order_id"] for o in person["orders"]} == {env["delivered"].order_id, env["shipped"].order_id}
    assert {t["id"] for t in person["tickets"]} == {env["ticket"].id, resolved.id}
    by_order = await (await client.get("/api/search", params={"q": env["shipped"].order_id})).json()
    assert [c["customer_id"] for c in by_order["customers"]] == [customer]  # the order's owner

    page = await client.get("/search", params={"q": customer})
    text = await page.text()
    assert page.status == 200 and resolved.id in text and env["delivered"].order_id in text and "已解决" in text
    too_long = await client.get("/api/search", params={"q": "长" * 65})
    assert too_long.status == 400 and "搜索内容最多" in (await too_long.json())["error"]
    assert headers  # the search is a GET: no CSRF needed, nothing changes


# -- transfer to online agents --------------------------------------------------------------------
async def test_transfer_only_to_an_agent_whose_console_is_open(agent_env):
    env = agent_env
    client, ticket = env["client"], env["ticket"]
    headers = await logged_in(env)
    await claimed(env, headers)
    assert (await (await client.get("/api/agents/online")).json())["agents"] == []
    refused = await client.post(f"/api/tickets/{ticket.id}/transfer", json={"to": env["bob"]}, headers=headers)
    assert refused.status == 400 and "不在线" in (await refused.json())["error"]
    assert (await env["services"].tickets.get(ticket.id)).assignee == env["alice"]

    bob = await env["aiohttp_client"](env["app"])
    assert await login(bob, env["bob"], PASSWORD)
    ws = await bob.ws_connect("/ws")
    try:
        for _ in range(100):
            online = (await (await client.get("/api/agents/online")).json())["agents"]
            if online:
                break
            await asyncio.sleep(0.05)
        assert online == [{"login": env["bob"], "name": "小李"}]
        assert (await client.post(f"/api/tickets/{ticket.id}/transfer", json={"to": env["bob"]})).status == 403  # CSRF
        moved = await client.post(f"/api/tickets/{ticket.id}/transfer", json={"to": env["bob"]}, headers=headers)
        assert moved.status == 200
        assert (await env["services"].tickets.get(ticket.id)).assignee == env["bob"]
        told = env["rasa"].events[env["sender"]][-1]
        assert told["data"]["custom"] == {"type": "handoff_status", "state": "claimed", "ticket_id": ticket.id,
                                          "agent_name": "小李"}
        assert told["text"] == "客服「小李」已接入，正在为您处理"
    finally:
        await ws.close()
    for _ in range(100):
        if not (await (await client.get("/api/agents/online")).json())["agents"]:
            break
        await asyncio.sleep(0.05)
    assert (await (await client.get("/api/agents/online")).json())["agents"] == []


# -- order actions --------------------------------------------------------------------------------
async def test_an_agent_opens_a_return_under_the_bots_rules(agent_env):
    env = agent_env
    client, ticket, delivered = env["client"], env["ticket"], env["delivered"]
    path = f"/api/tickets/{ticket.id}/returns"
    body = {"order_id": delivered.order_id, "item_ids": ["i2"], "kind": "return", "reason": "no_reason"}
    headers = await logged_in(env)
    assert (await client.post(path, json=body, headers=headers)).status == 409  # not claimed yet
    await claimed(env, headers)
    assert (await client.post(path, json={**body, "intact": True})).status == 403  # no CSRF token

    unchecked = await client.post(path, json=body, headers=headers)  # 完好 not confirmed: the bot would ask
    assert unchecked.status == 409 and "不能提交" in (await unchecked.json())["error"]
    refund_only = await client.post(path, json={**body, "kind": "refund_only", "intact": True}, headers=headers)
    assert refund_only.status == 409 and "仅退款" in (await refund_only.json())["error"]

    done = await client.post(path, json={**body, "intact": True}, headers=headers)
    result = await done.json()
    assert done.status == 200 and result["created"] and result["return"]["kind"] == "return"
    assert result["message"].startswith("已提交售后申请 " + result["return"]["return_id"])
    returns = await env["services"].orders.returns_of(env["customer"])
    assert [(r.order_id, r.item_ids, r.kind) for r in returns] == [(delivered.order_id, ("i2",), "return")]
    again = await (await client.post(path, json={**body, "intact": True}, headers=headers)).json()
    assert again["created"] is False and "未重复提交" in again["message"]
    notes = (await env["services"].tickets.get(ticket.id)).notes
    assert result["return"]["return_id"] in notes[0]["text"]

    intercept = await client.post(path, json={"order_id": env["shipped"].order_id, "item_ids": ["i1"],
                                              "kind": "refund_only", "reason": "other"}, headers=headers)
    assert intercept.status == 200 and (await intercept.json())["return"]["kind"] == "intercept"

    # A guest's ticket: only the order the bot verified for it.
    guest_order, other_order = delivered_order(f"c{uuid.uuid4().hex[:8]}"), delivered_order(f"c{uuid.uuid4().hex[:8]}")
    await env["services"].orders.save_orders([guest_order, other_order])
    guest, _ = await env["services"].tickets.create(f"web:{uuid.uuid4().hex}", "human_request", "normal", "socketio",
                                                    "游客退货", order_id=guest_order.order_id)
    await client.post(f"/api/tickets/{guest.id}/claim", headers=headers)
    guest_path = f"/api/tickets/{guest.id}/returns"
    assert (await client.post(guest_path, json={**body, "order_id": other_order.order_id, "intact": True},
                              headers=headers)).status == 404
    assert (await client.post(guest_path, json={**body, "order_id": guest_order.order_id, "intact": True},
                              headers=headers)).status == 200

    stranger = delivered_order(f"c{uuid.uuid4().hex[:8]}")
    await env["services"].orders.save_orders([stranger])
    for bad, status in (({**body, "order_id": stranger.order_id}, 404), ({**body, "item_ids": ["i9"]}, 400),
                        ({**body, "item_ids": []}, 400), ({**body, "kind": "steal"}, 400),
                        ({**body, "reason": "whim"}, 400), (["not", "an", "object"], 400)):
        response = await client.post(path, json=bad, headers=headers)
        assert response.status == status, bad
        assert any("\u4e00" <= ch <= "\u9fff" for ch in (await response.json())["error"])


async def test_a_refund_is_noted_on_the_ticket(agent_env):
    env = agent_env
    client, ticket = env["client"], env["ticket"]
    path = f"/api/tickets/{ticket.id}/refunds"
    headers = await logged_in(env)
    await claimed(env, headers)
    assert (await client.post(path, json={"amount": "12.5", "note": "运费补偿"})).status == 403
    for amount in ("", "abc", "-3", "0", "1e9", None):
        response = await client.post(path, json={"amount": amount}, headers=headers)
        assert response.status == 400 and "退款金额" in (await response.json())["error"], amount
    assert (await client.post(path, json={"amount": "12.5", "note": "运费补偿"}, headers=headers)).status == 200
    view = await (await client.get(f"/api/tickets/{ticket.id}")).json()
    assert [(r["amount"], r["note"], r["agent_name"]) for r in view["refunds"]] == [(12.5, "运费补偿", "小王")]
    assert view["ticket"]["notes"][-1]["text"] == "记录退款 ¥12.50：运费补偿"


# -- the shopper's side: typing, presence ---------------------------------------------------------
async def test_agent_typing_reaches_the_shoppers_room_as_json(agent_env):
    env = agent_env
    client, ticket = env["client"], env["ticket"]
    listener = async_redis(env["redis_url"])
    pubsub = listener.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("xiaobao-socketio")
    try:
        headers = await logged_in(env)
        path = f"/api/tickets/{ticket.id}/typing"
        assert (await client.post(path, json={"typing": True}, headers=headers)).status == 409  # not theirs yet
        await claimed(env, headers)
        assert (await client.post(path, json={"typing": True})).status == 403
        assert (await client.post(path, json={"typing": True}, headers=headers)).status == 200
        message = None
        for _ in range(50):
            message = await pubsub.get_message(timeout=0.1)
            if message:
                break
        sent = json.loads(message["data"])
        assert sent["event"] == "agent_typing" and sent["room"] == env["sender"] and sent["namespace"] == "/"
        assert sent["data"] == {"typing": True, "agent_name": "小王"}
    finally:
        await pubsub.aclose() if hasattr(pubsub, "aclose") else await pubsub.close()
        await listener.aclose() if hasattr(listener, "aclose") else await listener.close()


async def test_the_watching_page_learns_the_shoppers_presence(agent_env):
    env = agent_env
    await logged_in(env)
    redis = env["services"].redis
    ws = await env["client"].ws_connect("/ws")
    try:
        await ws.send_str(json.dumps({"watch": env["ticket"].id}))

        async def presence():
            while True:
                message = await ws.receive_json(timeout=5)
                if message["type"] == "presence":
                    return message

        assert (await presence())["online"] is False
        await redis.set(f"xb:presence:{env['sender']}", "1", ex=45)
        await redis.set(f"xb:typing:{env['sender']}", "1", ex=6)
        await redis.publish("xb:presence", json.dumps({"conversation": env["sender"], "online": True, "typing": True}))
        state = await presence()
        assert state["online"] is True and state["typing"] is True and state["ticket"] == env["ticket"].id
        await redis.delete(f"xb:typing:{env['sender']}")
        await redis.publish("xb:presence", json.dumps({"conversation": env["sender"], "online": True, "typing": False}))
        assert (await presence())["typing"] is False
    finally:
        await ws.close()
        await redis.delete(f"xb:presence:{env['sender']}")


async def test_logout_needs_the_csrf_token_and_ends_the_session(agent_env):
    env = agent_env
    client = env["client"]
    headers = await logged_in(env)
    assert (await client.post("/logout")).status == 403
    assert (await client.get("/api/queue")).status == 200
    assert (await client.post("/logout", headers=headers)).status == 200
    assert (await client.get("/api/queue")).status == 401


async def test_the_callback_number_is_in_the_ticket_view(agent_env):
    """The number the shopper left for a callback (kept by the dialogue side) reaches the agent."""
    env = agent_env
    await logged_in(env)
    await env["services"].tickets.set_callback(env["ticket"].id, "13912345678")
    view = await (await env["client"].get(f"/api/tickets/{env['ticket'].id}")).json()
    assert view["ticket"]["callback"] == "13912345678"
    queue = await (await env["client"].get("/api/queue")).json()
    assert [t["callback"] for t in queue["waiting"] if t["id"] == env["ticket"].id] == ["13912345678"]


async def test_errors_aiohttp_raises_itself_are_in_chinese(agent_env):
    env = agent_env
    client = env["client"]
    await logged_in(env)
    page = await client.get("/no-such-page")
    assert page.status == 404 and "找不到这个页面" in await page.text() and "Not Found" not in await page.text()
    api = await client.get("/api/no-such-thing")
    assert api.status == 404 and (await api.json())["error"] == "找不到这个页面"
    wrong_method = await client.get("/logout")
    assert wrong_method.status == 405 and "Method" not in await wrong_method.text()
