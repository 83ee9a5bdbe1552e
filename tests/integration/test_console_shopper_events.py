"""Contracts A and B across processes: the real console server and a shopper on Rasa's socket.io.

When the agent claims the ticket the shopper gets 「客服「…」已接入」 with a handoff_status
claimed payload; the agent's typing reaches the shopper's socket as `agent_typing` (console →
Redis → Rasa's socket.io manager); the shopper's presence reaches the agent's ticket page over
the console's WebSocket; on resolve the shopper gets ended, then the survey, and no old rating
buttons.
"""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp
import pytest

from tests.integration.conftest import AGENT_PASSWORD, matches_response, socket_session

pytestmark = pytest.mark.integration


async def agent_session(base: str, name: str) -> tuple:
    """An aiohttp session logged into the console, and its CSRF token."""
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # cookies for 127.0.0.1
    login_page = await (await session.get(base + "/login")).text()
    csrf = re.search(r'name="csrf" value="([^"]+)"', login_page).group(1)
    await session.post(base + "/login", data={"name": name, "password": AGENT_PASSWORD, "csrf": csrf})
    home = await (await session.get(base + "/")).text()
    return session, re.search(r'name="csrf-token" content="([^"]+)"', home).group(1)


async def next_matching(queue: asyncio.Queue, predicate, timeout: float = 20):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            item = await asyncio.wait_for(queue.get(), timeout=max(deadline - time.monotonic(), 0.01))
        except asyncio.TimeoutError:
            break
        seen.append(item)
        if predicate(item):
            return item, seen
    raise AssertionError(f"never arrived; saw {seen}")


async def test_claim_typing_presence_and_survey_reach_the_other_side(stack, console):
    import redis.asyncio as aioredis

    from bot.handoff.tickets import TicketStore

    base, agent = console
    redis = aioredis.Redis.from_url(stack.redis_url)
    async with socket_session(stack) as (client, replies, issued, conversation):
        typing: asyncio.Queue = asyncio.Queue()
        client.on("agent_typing", typing.put)
        # The shopper has talked to the bot (Rasa delivers agent messages to the latest channel).
        await client.emit("user_uttered", {"message": "你好", "session_id": issued})
        await asyncio.wait_for(replies.get(), 20)
        ticket, _ = await TicketStore(redis).create(conversation, "human_request", "normal", "socketio", "顾客要求转人工")
        session, csrf = await agent_session(base, agent)
        headers = {"X-CSRF-Token": csrf}
        try:
            ws = await session.ws_connect(base.replace("http", "ws") + "/ws")
            await ws.send_json({"watch": ticket.id})
            await client.emit("presence", {"session_id": issued})

            async def presence(online: bool):
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    message = await ws.receive_json(timeout=20)
                    if message.get("type") == "presence" and message["online"] is online:
                        return message
                raise AssertionError("no presence update")

            assert (await presence(True))["ticket"] == ticket.id

            claim = await session.post(f"{base}/api/tickets/{ticket.id}/claim", headers=headers)
            assert claim.status == 200
            await next_matching(replies, lambda m: m.get("text") == f"客服「{agent}」已接入，正在为您处理")
            claimed, _ = await next_matching(replies, lambda m: "custom" in m)
            assert claimed["custom"] == {"type": "handoff_status", "state": "claimed", "ticket_id": ticket.id,
                                         "agent_name": agent}

            assert (await session.post(f"{base}/api/tickets/{ticket.id}/typing", json={"typing": True},
                                       headers=headers)).status == 200
            assert await asyncio.wait_for(typing.get(), 10) == {"typing": True, "agent_name": agent}

            assert (await session.post(f"{base}/api/tickets/{ticket.id}/resolve", headers=headers)).status == 200
            ended, seen = await next_matching(replies, lambda m: (m.get("custom") or {}).get("type") == "survey")
            kinds = [(m.get("custom") or {}).get("state") or (m.get("custom") or {}).get("type") for m in seen if "custom" in m]
            assert kinds == ["ended", "survey"] and ended["custom"]["ticket_id"] == ticket.id
            await asyncio.sleep(1.0)
            late = []
            while not replies.empty():
                late.append(replies.get_nowait())
            assert not [m for m in seen + late if matches_response(m.get("text") or "", "utter_ask_rating")]
            await ws.close()
        finally:
            await session.close()
            await redis.aclose() if hasattr(redis, "aclose") else await redis.close()
