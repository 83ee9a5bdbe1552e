"""The agent console through aiohttp's test client, with a real Redis and a fake Rasa API on loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import re
import uuid

import pytest
from aiohttp import web
from cryptography.fernet import Fernet

from bot.console.app import CONFIG, SERVICES, ConsoleConfig, create_app, watch_sla
from bot.console.agents import AgentStore
from bot.handoff.tickets import TicketStore

RASA_TOKEN = "rasa-test-token"


class FakeRasa:
    """Rasa's HTTP API as the console uses it: trackers, appended events, triggered intents."""

    def __init__(self):
        self.events = {}
        self.triggered = []
        self.delay_s = 0.0  # how long appending events takes

    def app(self) -> web.Application:
        async def check(request):
            if request.query.get("token") != RASA_TOKEN:
                raise web.HTTPUnauthorized()

        async def tracker(request):
            await check(request)
            sender = request.match_info["sender"]
            return web.json_response({"sender_id": sender, "events": self.events.get(sender, [])})

        async def append(request):
            await check(request)
            await asyncio.sleep(self.delay_s)
            self.events.setdefault(request.match_info["sender"], []).extend(await request.json())
            return web.json_response({})

        async def trigger(request):
            await check(request)
            self.triggered.append((request.match_info["sender"], (await request.json())["name"]))
            return web.json_response({})

        app = web.Application()
        app.add_routes([web.get("/conversations/{sender}/tracker", tracker),
                        web.post("/conversations/{sender}/tracker/events", append),
                        web.post("/conversations/{sender}/trigger_intent", trigger)])
        return app


@pytest.fixture
async def env(redis_url, aiohttp_server, aiohttp_client):
    rasa = FakeRasa()
    rasa_server = await aiohttp_server(rasa.app())
    config = ConsoleConfig(redis_url=redis_url, rasa_url=str(rasa_server.make_url("")), rasa_token=RASA_TOKEN,
                           session_key=Fernet.generate_key(), poll_interval_s=0.05, sla_interval_s=3600)
    app = create_app(config)
    client = await aiohttp_client(app)
    services = app[SERVICES]
    names = [f"alice{uuid.uuid4().hex[:6]}", f"bob{uuid.uuid4().hex[:6]}"]
    for name in names:
        await services.agents.add(name, "correct horse battery")
    return {"client": client, "app": app, "rasa": rasa, "tickets": services.tickets, "agents": names,
            "aiohttp_client": aiohttp_client}


async def login(client, name, password="correct horse battery"):
    page = await client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)
    response = await client.post("/login", data={"name": name, "password": password, "csrf": csrf}, allow_redirects=False)
    if response.status != 302 or response.headers["Location"] != "/":
        return None
    home = await client.get("/")
    return re.search(r'name="csrf-token" content="([^"]+)"', await home.text()).group(1)


async def new_ticket(tickets, summary="顾客要求转人工", sender=None):
    sender = sender or f"s-{uuid.uuid4().hex[:8]}"
    ticket, _ = await tickets.create(sender, "human_request", "normal", "socketio", summary)
    return ticket


async def test_everything_needs_a_login(env):
    client = env["client"]
    assert (await client.get("/", allow_redirects=False)).headers["Location"] == "/login"
    assert (await client.get("/api/queue")).status == 401
    assert (await client.get("/ws")).status == 401
    assert (await client.post("/api/tickets/x/claim")).status == 401


async def test_forged_session_cookie_is_not_a_login(env):
    client = env["client"]
    client.session.cookie_jar.update_cookies({"xb_console": "gAAAAABforged"})
    assert (await client.get("/api/queue")).status == 401


async def test_wrong_passwords_are_throttled(env):
    client, name = env["client"], env["agents"][0]
    for _ in range(5):
        assert await login(client, name, "wrong password!") is None
    page = await client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)
    throttled = await client.post("/login", data={"name": name, "password": "correct horse battery", "csrf": csrf})
    assert throttled.status == 429


async def test_claim_reply_and_hand_back(env):
    client, tickets, rasa = env["client"], env["tickets"], env["rasa"]
    ticket = await new_ticket(tickets)
    csrf = await login(client, env["agents"][0])
    queue = await (await client.get("/api/queue")).json()
    assert ticket.id in [t["id"] for t in queue["waiting"]]

    assert (await client.post(f"/api/tickets/{ticket.id}/claim")).status == 403  # no CSRF header
    headers = {"X-CSRF-Token": csrf}
    assert (await client.post(f"/api/tickets/{ticket.id}/claim", headers=headers)).status == 200
    reply = await client.post(f"/api/tickets/{ticket.id}/reply", json={"text": "您好，我来处理"}, headers=headers)
    assert reply.status == 200
    pause, claimed, bot = rasa.events[ticket.sender_id]
    assert pause["event"] == "pause"
    # Contract A: the shopper is told who took the conversation, by display name.
    assert claimed["data"]["custom"] == {"type": "handoff_status", "state": "claimed", "ticket_id": ticket.id,
                                         "agent_name": env["agents"][0]}
    assert claimed["text"] == f"客服「{env['agents'][0]}」已接入，正在为您处理"
    assert bot["event"] == "bot" and bot["text"].endswith("您好，我来处理") and "人工客服" in bot["text"]
    assert bot["metadata"]["sent_by"] == "agent"

    view = await (await client.get(f"/api/tickets/{ticket.id}")).json()
    assert [t["from"] for t in view["transcript"]] == ["system", "agent"]

    assert (await client.post(f"/api/tickets/{ticket.id}/resolve", headers=headers)).status == 200
    after = rasa.events[ticket.sender_id][3:]
    assert [e["event"] for e in after] == ["resume", "action", "bot", "bot"]
    # Ended, then the survey; the old rating buttons (handed_back) are not asked for as well.
    assert [e["data"]["custom"]["type"] for e in after[2:]] == ["handoff_status", "survey"]
    assert after[2]["data"]["custom"]["state"] == "ended" and after[3]["data"]["custom"]["ticket_id"] == ticket.id
    assert rasa.triggered == []


async def test_a_wechat_shopper_gets_the_rating_options_instead_of_the_survey(env):
    """WeChat shows no custom payloads: the bot's closing and numbered rating options instead."""
    client, tickets, rasa = env["client"], env["tickets"], env["rasa"]
    ticket, _ = await tickets.create(f"wx:{uuid.uuid4().hex[:12]}", "human_request", "normal", "wechat", "微信顾客")
    headers = {"X-CSRF-Token": await login(client, env["agents"][0])}
    assert (await client.post(f"/api/tickets/{ticket.id}/claim", headers=headers)).status == 200
    assert (await client.post(f"/api/tickets/{ticket.id}/resolve", headers=headers)).status == 200
    assert rasa.triggered == [(ticket.sender_id, "handed_back")]
    assert not [e for e in rasa.events[ticket.sender_id] if (e.get("data") or {}).get("custom", {}).get("type") == "survey"]


async def test_only_the_owner_can_reply(env):
    tickets = env["tickets"]
    ticket = await new_ticket(tickets)
    alice, bob = env["client"], await env["aiohttp_client"](env["app"])
    alice_csrf = await login(alice, env["agents"][0])
    bob_csrf = await login(bob, env["agents"][1])
    await alice.post(f"/api/tickets/{ticket.id}/claim", headers={"X-CSRF-Token": alice_csrf})
    lost = await bob.post(f"/api/tickets/{ticket.id}/claim", headers={"X-CSRF-Token": bob_csrf})
    assert lost.status == 409
    denied = await bob.post(f"/api/tickets/{ticket.id}/reply", json={"text": "hi"}, headers={"X-CSRF-Token": bob_csrf})
    assert denied.status == 409
    assert all(e.get("metadata", {}).get("sent_by") != "agent" for e in env["rasa"].events.get(ticket.sender_id, []))


async def test_shopper_text_is_escaped(env):
    client, tickets = env["client"], env["tickets"]
    ticket = await new_ticket(tickets, summary="<script>alert('x')</script>")
    await login(client, env["agents"][0])
    html = await (await client.get(f"/tickets/{ticket.id}")).text()
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html


async def test_websocket_pushes_the_queue_and_the_watched_conversation(env):
    client, tickets, rasa = env["client"], env["tickets"], env["rasa"]
    ticket = await new_ticket(tickets)
    rasa.events[ticket.sender_id] = [{"event": "user", "text": "还在吗？", "timestamp": 1}]
    await login(client, env["agents"][0])
    ws = await client.ws_connect("/ws")
    await ws.send_json({"watch": ticket.id})
    seen = set()
    for _ in range(20):
        message = await asyncio.wait_for(ws.receive_json(), timeout=5)
        seen.add(message["type"])
        if message["type"] == "conversation":
            assert message["transcript"][0]["text"] == "还在吗？"
            break
    assert seen >= {"queue", "conversation"}
    await ws.close()


async def make_overdue(store: TicketStore, ticket) -> None:
    """Moves the ticket's SLA due time into the past, in Redis (either ticket layout)."""
    key, redis = store._key("ticket", ticket.id), store._redis
    past = (dt.datetime.fromisoformat(ticket.created_at) - dt.timedelta(minutes=1)).isoformat()
    if (await redis.type(key)) == b"hash":
        doc = json.loads(await redis.hget(key, "doc"))
        await redis.hset(key, "doc", json.dumps({**doc, "sla_due": past}, ensure_ascii=False))
    else:
        await redis.set(key, (await redis.get(key)).decode().replace(ticket.sla_due, past))


async def test_unclaimed_ticket_past_its_sla_tells_the_shopper(env):
    tickets, rasa, app = env["tickets"], env["rasa"], env["app"]
    ticket = await new_ticket(tickets)
    await make_overdue(tickets, ticket)
    task = asyncio.create_task(watch_sla(app))
    for _ in range(50):
        await asyncio.sleep(0.05)
        if (await tickets.get(ticket.id)).sla_notified:
            break
    task.cancel()
    events = rasa.events[ticket.sender_id]
    assert [e["event"] for e in events] == ["resume", "action", "bot"] and ticket.id in events[2]["text"]


async def test_two_sla_workers_tell_the_shopper_once(env, aiohttp_client):
    """watch_sla runs in every web-app replica: two replicas, each with its own Redis client and
    its own SLA worker, on the same overdue tickets. Each shopper gets one notice."""
    tickets, rasa = env["tickets"], env["rasa"]
    rasa.delay_s = 0.1  # the notice takes a moment to send: both replicas are at work together
    fast = dataclasses.replace(env["app"][CONFIG], sla_interval_s=0.05)
    replicas = [(await aiohttp_client(create_app(fast))).app for _ in range(2)]
    assert replicas[0][SERVICES].redis is not replicas[1][SERVICES].redis
    overdue = [await new_ticket(tickets) for _ in range(3)]
    for ticket in overdue:
        await make_overdue(tickets, ticket)
    for _ in range(100):
        await asyncio.sleep(0.05)
        if all(t.sla_notified for t in await asyncio.gather(*(tickets.get(t.id) for t in overdue))):
            break
    await asyncio.sleep(0.5)  # both workers have made further passes
    for ticket in overdue:
        notices = [e for e in rasa.events.get(ticket.sender_id, []) if e["event"] == "bot"]
        assert len(notices) == 1, f"{ticket.id}: {len(notices)} notices"
        assert (await tickets.get(ticket.id)).sla_notified


async def test_the_queue_and_the_watched_ticket_are_pushed(env, aiohttp_client, monkeypatch):
    """Without any polling (the poll interval is an hour), a change made elsewhere (another
    replica's store) reaches an open console WebSocket; and the queue is built without reading
    every ticket ever created."""
    config = dataclasses.replace(env["app"][CONFIG], poll_interval_s=3600)
    client = await aiohttp_client(create_app(config))
    name = env["agents"][0]
    await login(client, name)
    elsewhere = TicketStore.from_url(config.redis_url)  # another replica, its own connection
    watched = await new_ticket(elsewhere)

    async def every_ticket(self):
        raise AssertionError("the queue read every ticket ever created")

    monkeypatch.setattr(TicketStore, "all_tickets", every_ticket)
    ws = await client.ws_connect("/ws")
    await ws.send_json({"watch": watched.id})

    async def until(check, what):
        deadline = asyncio.get_running_loop().time() + 5
        while True:
            left = deadline - asyncio.get_running_loop().time()
            assert left > 0, f"not pushed: {what}"
            try:
                message = await asyncio.wait_for(ws.receive_json(), timeout=left)
            except asyncio.TimeoutError:
                raise AssertionError(f"not pushed: {what}")
            if check(message):
                return message

    def queue_has(ticket_id, box):
        return lambda m: m["type"] == "queue" and ticket_id in [t["id"] for t in m[box]]

    await until(lambda m: m["type"] == "conversation" and m["ticket"]["id"] == watched.id, "the watched ticket")
    await asyncio.sleep(0.3)  # the first snapshots are out; what follows is pushed
    fresh = await new_ticket(elsewhere)
    await until(queue_has(fresh.id, "waiting"), "a new ticket")
    assert await elsewhere.claim(fresh.id, name)
    await until(queue_has(fresh.id, "mine"), "a claim by this agent")
    await elsewhere.add_note(watched.id, "bob", "顾客来电催促")
    noted = await until(lambda m: m["type"] == "conversation" and m["ticket"]["notes"], "a note on the watched ticket")
    assert noted["ticket"]["notes"][-1]["text"] == "顾客来电催促"
    await ws.close()
    await elsewhere.close()


async def test_dashboard_counts_real_conversations(env, redis_url):
    """A conversation stored by the tracker store Rasa is configured with is counted."""
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from bot.stores.redis import RedisEventLogTrackerStore

    client = env["client"]
    await login(client, env["agents"][0])
    before = (await (await client.get("/api/dashboard")).json())["conversations"]
    store = RedisEventLogTrackerStore(Domain.from_yaml("intents: [greet]"), host=redis_url, key_prefix="xiaobao")
    for _ in range(2):
        tracker = DialogueStateTracker(f"dash-{uuid.uuid4().hex}", [])
        tracker.update(UserUttered("你好"))
        tracker.update(ActionExecuted("action_listen"))
        await store.save(tracker)
    after = (await (await client.get("/api/dashboard")).json())["conversations"]
    assert after == before + 2


async def test_dashboard(env):
    client = env["client"]
    await login(client, env["agents"][0])
    metrics = await (await client.get("/api/dashboard")).json()
    assert set(metrics) >= {"conversations", "automation_rate", "escalation_rate", "median_wait_s", "csat"}


async def test_agent_passwords_are_hashed(redis_url):
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    store = AgentStore(client, prefix=f"test:{uuid.uuid4().hex}:")
    await store.add("carol", "a long password")
    stored = await client.hget(store._prefix + "agents", "carol")
    assert stored.startswith(b"$argon2") and b"a long password" not in stored
    assert await store.verify("carol", "a long password") and not await store.verify("carol", "wrong")
    with pytest.raises(ValueError):
        await store.add("dave", "short")
    await client.close()


async def test_a_session_expires_after_eight_hours(env, monkeypatch):
    import time

    client = env["client"]
    assert await login(client, env["agents"][0])
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 7 * 3600)
    assert (await client.get("/api/queue")).status == 200  # a long shift is fine
    monkeypatch.setattr(time, "time", lambda: real_time() + 9 * 3600)
    assert (await client.get("/api/queue")).status == 401
    assert (await client.get("/", allow_redirects=False)).headers["Location"] == "/login"
