"""Issue 16 in the agent console, through aiohttp's test client with a real Redis and a fake Rasa:
(5) internal notes on a claimed ticket, and every note failure a JSON error in Chinese (never a 500);
(9) Chinese labels next to the machine values, and Chinese error messages;
(4) agents have a display name, and shoppers see it instead of the login."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import uuid

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.console.agents import AgentStore
from bot.console.app import SERVICES
from bot.orders.demo import demo_orders
from bot.orders.models import to_dict
from bot.redis_url import async_redis
from tests.console.test_console import env, login, new_ticket  # noqa: F401 - the fixture
from tests.console.test_risk_console import as_supervisor, risk_env, trend_alert  # noqa: F401 - the fixture

LATIN_WORD = re.compile(r"[A-Za-z]{3,}")


def chinese(message: str) -> bool:
    """A message an agent can read: it has Chinese and no English words (ids and codes aside)."""
    return bool(re.search(r"[\u4e00-\u9fff]", message)) and not LATIN_WORD.search(message)


async def claimed_ticket(env, agent_index=0):
    client, tickets = env["client"], env["tickets"]
    ticket = await new_ticket(tickets)
    csrf = await login(client, env["agents"][agent_index])
    headers = {"X-CSRF-Token": csrf}
    assert (await client.post(f"/api/tickets/{ticket.id}/claim", headers=headers)).status == 200
    return ticket, headers


# -- (5) internal notes ----------------------------------------------------------------------
async def test_a_note_on_a_claimed_ticket_is_saved_by_its_owner(env):
    client, tickets = env["client"], env["tickets"]
    ticket, headers = await claimed_ticket(env)
    noted = await client.post(f"/api/tickets/{ticket.id}/note", json={"text": "顾客很着急，先查物流"}, headers=headers)
    assert noted.status == 200, await noted.text()
    stored = await tickets.get(ticket.id)
    assert stored.status == "claimed" and [n["text"] for n in stored.notes] == ["顾客很着急，先查物流"]


async def test_a_note_on_a_ticket_claimed_under_the_earlier_layout(env):
    """The reviewer's 500: the earlier layout's claim script re-encoded the ticket with Lua's
    cjson, which writes an empty list as {}, and the note then did `{} + [note]` (TypeError). Such
    a ticket, exactly as that script left it, takes a note through the console."""
    client, tickets = env["client"], env["tickets"]
    csrf = await login(client, env["agents"][0])
    created = dt.datetime.now(dt.timezone(dt.timedelta(hours=8)))
    ticket_id = f"T{created:%Y%m%d}9{uuid.uuid4().int % 10000:04d}"
    legacy = {"id": ticket_id, "sender_id": f"s-{uuid.uuid4().hex[:8]}", "category": "human_request",
              "priority": "normal", "channel": "socketio", "summary": "顾客要求转人工", "customer": None,
              "order_id": None, "created_at": created.isoformat(),
              "sla_due": (created + dt.timedelta(hours=1)).isoformat(), "status": "claimed",
              "assignee": env["agents"][0], "claimed_at": created.isoformat(), "resolved_at": None,
              "sla_notified": False, "rating": None, "notes": {}, "evidence": {}}
    await tickets._redis.set(tickets._key("ticket", ticket_id), json.dumps(legacy, ensure_ascii=False))
    noted = await client.post(f"/api/tickets/{ticket_id}/note", json={"text": "已电话联系"},
                              headers={"X-CSRF-Token": csrf})
    assert noted.status == 200, await noted.text()
    assert [n["text"] for n in (await tickets.get(ticket_id)).notes] == ["已电话联系"]


async def test_note_failures_are_chinese_json_never_a_500(env):
    """Today's code answered a body that is not a JSON object, and a Redis failure, with aiohttp's
    English 500 page; the page then showed 「失败：Internal Server Error」."""
    client, app = env["client"], env["app"]
    ticket, headers = await claimed_ticket(env)
    url = f"/api/tickets/{ticket.id}/note"
    cases = [
        (dict(data="备注", headers={**headers, "Content-Type": "text/plain"}), 400),
        (dict(json=["备注"], headers=headers), 400),
        (dict(json={"text": "   "}, headers=headers), 400),
        (dict(json={"text": "长" * 2001}, headers=headers), 400),
        (dict(json={"text": "x"}, headers={"X-CSRF-Token": "wrong"}), 403),
    ]
    for kwargs, status in cases:
        response = await client.post(url, **kwargs)
        body = await response.json()
        assert response.status == status and chinese(body["error"]), (kwargs, response.status, body)

    async def redis_down(*args, **kwargs):
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    app[SERVICES].tickets.add_note = redis_down
    response = await client.post(url, json={"text": "顾客来电"}, headers=headers)
    body = await response.json()
    assert response.status == 503 and chinese(body["error"]), body

    async def broken(*args, **kwargs):
        raise KeyError("doc")

    app[SERVICES].tickets.add_note = broken
    response = await client.post(url, json={"text": "顾客来电"}, headers=headers)
    assert response.status == 500 and chinese((await response.json())["error"])


# -- (9) Chinese labels and messages ---------------------------------------------------------
async def test_tickets_orders_and_evidence_carry_chinese_labels(env):
    client, tickets = env["client"], env["tickets"]
    order = to_dict(next(o for o in demo_orders(dt.date.today()) if o.status == "delivered"))
    sender = f"s-{uuid.uuid4().hex[:8]}"
    urgent, _ = await tickets.create(sender, "safety", "urgent", "wechat", "充电器冒烟", customer=order["customer_id"],
                                     order_id=order["order_id"], evidence={"order": order})
    csrf = await login(client, env["agents"][0])
    queued = next(t for t in (await (await client.get("/api/queue")).json())["waiting"] if t["id"] == urgent.id)
    assert (queued["priority"], queued["priority_label"]) == ("urgent", "紧急")
    assert (queued["status"], queued["status_label"]) == ("waiting", "排队中")
    assert queued["channel_label"] == "微信"
    assert (await client.post(f"/api/tickets/{urgent.id}/claim", headers={"X-CSRF-Token": csrf})).status == 200
    view = await (await client.get(f"/api/tickets/{urgent.id}")).json()
    assert (view["ticket"]["status"], view["ticket"]["status_label"]) == ("claimed", "已接入")
    assert (view["evidence"]["order"]["status"], view["evidence"]["order"]["status_label"]) == ("delivered", "已签收")
    assert all(o["status_label"] != o["status"] for o in view["orders"])
    assert all(chinese(r["kind_label"]) and chinese(r["status_label"]) for r in view["returns"])
    normal = await new_ticket(tickets)
    labels = {t["id"]: t["priority_label"] for t in (await (await client.get("/api/queue")).json())["waiting"]}
    assert labels[normal.id] == "普通"


async def test_console_errors_are_in_chinese(env):
    client, tickets = env["client"], env["tickets"]
    ticket = await new_ticket(tickets)
    assert chinese((await (await client.get("/api/queue")).json())["error"])  # not logged in
    csrf = await login(client, env["agents"][0])
    headers = {"X-CSRF-Token": csrf}
    other = await env["aiohttp_client"](env["app"])
    other_csrf = await login(other, env["agents"][1])
    assert (await other.post(f"/api/tickets/{ticket.id}/claim", headers={"X-CSRF-Token": other_csrf})).status == 200
    responses = [
        await client.post(f"/api/tickets/{ticket.id}/claim", headers={"X-CSRF-Token": "forged"}),  # 403
        await client.post(f"/api/tickets/{ticket.id}/claim", headers=headers),  # 409: the other agent has it
        await client.post(f"/api/tickets/{ticket.id}/reply", json={"text": "您好"}, headers=headers),  # 409
        await client.post(f"/api/tickets/T-nonexistent/note", json={"text": "备注"}, headers=headers),  # 404
        await other.post(f"/api/tickets/{ticket.id}/transfer", json={"to": "nobody"},
                         headers={"X-CSRF-Token": other_csrf}),  # 400
        await other.post(f"/api/tickets/{ticket.id}/reply", json={"text": ""}, headers={"X-CSRF-Token": other_csrf}),
    ]
    for response in responses:
        body = await response.json()
        assert response.status >= 400 and chinese(body["error"]), (response.status, body)


async def test_a_refused_alert_action_says_why_in_chinese(risk_env):
    client = risk_env["client"]
    alert = await trend_alert(risk_env["alerts"], "m-jiadian", "家电")
    headers = {"X-CSRF-Token": await as_supervisor(risk_env)}
    url = f"/api/risk/alerts/{alert.id}"
    assert (await client.post(f"{url}/acknowledge", headers=headers)).status == 200
    again = await client.post(f"{url}/acknowledge", headers=headers)
    body = await again.json()
    assert again.status == 409 and chinese(body["error"]) and chinese(body["detail"]), body
    assert "已确认收到" in body["detail"]


# -- (4) display names -----------------------------------------------------------------------
async def test_shoppers_see_the_display_name_never_the_login(env):
    client, rasa, app = env["client"], env["rasa"], env["app"]
    login_name = f"alice{uuid.uuid4().hex[:6]}"
    await app[SERVICES].agents.add(login_name, "correct horse battery", display="小王")
    ticket = await new_ticket(env["tickets"])
    csrf = await login(client, login_name)
    headers = {"X-CSRF-Token": csrf}
    assert (await client.post(f"/api/tickets/{ticket.id}/claim", headers=headers)).status == 200
    replied = await client.post(f"/api/tickets/{ticket.id}/reply", json={"text": "您好，我来处理"}, headers=headers)
    assert replied.status == 200
    bot = rasa.events[ticket.sender_id][-1]
    assert bot["text"].startswith("👩‍💼 人工客服「小王」：") and login_name not in bot["text"]
    assert bot["metadata"]["agent"] == login_name and bot["metadata"]["agent_name"] == "小王"
    view = await (await client.get(f"/api/tickets/{ticket.id}")).json()
    assert view["transcript"][-1]["agent_name"] == "小王" and view["ticket"]["assignee_name"] == "小王"
    assert "小王" in await (await client.get("/")).text()  # the header names the agent as colleagues see them


async def test_the_display_name_defaults_to_the_login_and_survives_a_password_reset(redis_url):
    client = async_redis(redis_url)
    try:
        store = AgentStore(client, prefix=f"xb:test-console:{uuid.uuid4().hex[:8]}:")
        await store.add("bob", "correct horse battery")
        assert await store.display_name("bob") == "bob"
        await store.add("bob", "correct horse battery", display=" 小李 ")
        await store.add("bob", "another good password")  # a reset without --display keeps it
        assert await store.display_name("bob") == "小李"
        assert await store.display_names() == {"bob": "小李"}
        for bad in ("", "   ", "名" * 21, "小\n王"):
            with pytest.raises(ValueError):
                await store.add("bob", "correct horse battery", display=bad)
        await store.remove("bob")
        assert await store.display_name("bob") == "bob"
    finally:
        await client.aclose() if hasattr(client, "aclose") else await client.close()


def test_add_agent_takes_a_display_name_on_the_command_line(redis_url, tmp_path, monkeypatch, capsys):
    from bot.console.__main__ import main as console_main
    from bot.console.__main__ import parse_add_agent

    assert parse_add_agent(["add-agent", "alice", "--role", "supervisor", "--display", "小王"]) == \
        ("alice", "supervisor", "小王")
    assert parse_add_agent(["add-agent", "alice", "--display"]) is None
    name = f"cli{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("AGENT_PASSWORD", "correct horse battery")
    monkeypatch.setenv("XIAOBAO_VAR_DIR", str(tmp_path))
    assert console_main(["add-agent", name, "--role", "agent", "--display", "小王"]) == 0
    assert "小王" in capsys.readouterr().out

    async def stored():
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await AgentStore(client).display_name(name), await AgentStore(client).role(name)
        finally:
            await client.aclose() if hasattr(client, "aclose") else await client.close()

    assert asyncio.run(stored()) == ("小王", "agent")
    assert console_main(["add-agent", name, "--display", "名" * 21]) == 2
