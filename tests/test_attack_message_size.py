"""Attack (issue 13, message-size-unbounded): huge messages over REST and socket.io.

Performed against the real stack (Redis, action server, Rasa with the real channels). Passes only
when a body over MAX_BODY_BYTES is refused before it is read (HTTP 413), and a message over
MAX_MESSAGE_CHARS is refused quickly with 「消息太长了」 and nothing of it reaches Redis.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
import urllib.error
import urllib.request
import uuid

import pytest
import redis as redis_lib

from bot.channels.polite import system_message
from tests.integration.conftest import stack  # noqa: F401 (the real stack, as a fixture)

pytestmark = [pytest.mark.integration, pytest.mark.attack("message-size-unbounded")]
TOO_LONG = system_message("message_too_long").format(max_chars=2000)
HUGE_CHARS = 100_000  # under the body limit even JSON-escaped (6 bytes a character), fifty times the message limit


def webhook(stack) -> str:
    return f"http://127.0.0.1:{stack.rasa_port}/webhooks/rest/webhook"


def biggest_value_mentioning(redis_url: str, needle: str) -> int:
    """The largest serialized Redis value whose key names `needle`, or which contains it."""
    client, biggest = redis_lib.Redis.from_url(redis_url), 0
    try:
        for key in client.scan_iter(count=1000):
            dumped = client.dump(key) or b""
            if needle.encode() in key or needle.encode() in dumped:
                biggest = max(biggest, len(dumped))
    finally:
        client.close()
    return biggest


def test_a_body_over_the_limit_is_refused_before_it_is_read(stack):
    marker = uuid.uuid4().hex
    body = json.dumps({"sender": f"big-{marker}", "message": marker + "x" * (20 * 1024 * 1024)}).encode()
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", stack.rasa_port, timeout=30)
    try:
        connection.putrequest("POST", "/webhooks/rest/webhook")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders()
        try:
            connection.send(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: refused
        status = connection.getresponse().status
    except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
        status = 413
    finally:
        connection.close()
    assert status == 413
    assert time.monotonic() - started < 5
    assert biggest_value_mentioning(stack.redis_url, marker) == 0


def test_a_huge_rest_message_gets_the_polite_reply_quickly_and_is_never_stored(stack):
    sender, marker = f"huge-{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    text = marker + "我要退货" * (HUGE_CHARS // 4)
    request = urllib.request.Request(webhook(stack), data=json.dumps({"sender": sender, "message": text}).encode(),
                                     headers={"Content-Type": "application/json"})
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=60) as response:
        replies = json.loads(response.read())
    assert time.monotonic() - started < 3
    assert [reply.get("text") for reply in replies] == [TOO_LONG]
    assert biggest_value_mentioning(stack.redis_url, marker) == 0  # not in the event log, nor anywhere
    assert biggest_value_mentioning(stack.redis_url, sender) < 4096


async def test_a_huge_socketio_message_gets_the_polite_reply_quickly_and_is_never_stored(stack):
    import socketio

    client, replies, confirmed = socketio.AsyncClient(reconnection=False), asyncio.Queue(), asyncio.Queue()
    client.on("bot_uttered", replies.put)
    client.on("session_confirm", confirmed.put)
    await client.connect(f"http://127.0.0.1:{stack.rasa_port}", transports=["websocket"], socketio_path="/socket.io")
    try:
        await client.emit("session_request", {})
        session = await asyncio.wait_for(confirmed.get(), timeout=10)
        marker = uuid.uuid4().hex
        started = time.monotonic()
        await client.emit("user_uttered", {"message": marker + "我要退货" * (HUGE_CHARS // 4), "session_id": session})
        reply = await asyncio.wait_for(replies.get(), timeout=30)
        assert time.monotonic() - started < 3
        assert reply.get("text") == TOO_LONG
    finally:
        await client.disconnect()
    assert biggest_value_mentioning(stack.redis_url, marker) == 0
