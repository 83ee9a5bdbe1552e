"""The socket.io channel with session persistence, as a browser widget uses it."""

from __future__ import annotations

import asyncio

import pytest
import socketio

from tests.integration.conftest import matches_response, socket_session

pytestmark = pytest.mark.integration


async def converse(stack, text: str, expected_replies: int = 1):
    async with socket_session(stack) as (client, replies, session_id, _):
        await client.emit("user_uttered", {"message": text, "session_id": session_id})
        return [await asyncio.wait_for(replies.get(), timeout=30) for _ in range(expected_replies)]


async def signed_converse(stack, token, text: str):
    """Like the widget: asks for a session (resuming `token` if given), then talks in the one issued."""
    async with socket_session(stack, token) as (client, replies, issued, _):
        await client.emit("user_uttered", {"message": text, "session_id": issued})
        return issued, await asyncio.wait_for(replies.get(), timeout=30)


async def test_socketio_replies_and_keeps_the_signed_session_across_reconnects(stack):
    token, greeting = await signed_converse(stack, None, "你好")
    assert matches_response(greeting["text"], "utter_greet")
    again, thanks = await signed_converse(stack, token, "谢谢")  # a new socket, the same conversation
    assert again == token and matches_response(thanks["text"], "utter_thanks")
    conversation = "web:" + token.split(".")[0]
    events = stack.api(f"/conversations/{conversation}/tracker", token=stack.token)["events"]
    assert [e["text"] for e in events if e["event"] == "user"] == ["你好", "谢谢"]


async def test_a_session_id_without_its_signature_starts_a_new_conversation(stack):
    token, _ = await signed_converse(stack, None, "你好")
    issued, _ = await signed_converse(stack, token.split(".")[0], "谢谢")  # the id alone, as in a log
    assert issued != token and issued.split(".")[0] != token.split(".")[0]


async def test_rights_answers_reach_socket_clients_with_their_citation_payload(stack):
    replies = await converse(stack, "网上买的裙子收到后不喜欢，七天内能不能退", expected_replies=4)
    payload = next(r["custom"] for r in replies if "custom" in r)
    assert payload["type"] == "rights_answer" and payload["citations"][0]["text"].startswith("第")
    assert any("依据" in (r.get("text") or "") for r in replies)


async def test_garbage_socket_events_are_survived(stack):
    url = f"http://127.0.0.1:{stack.rasa_port}"
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, transports=["websocket"], socketio_path="/socket.io")
    for junk in ["not a dict", 12345, None, [1, 2, 3], {"message": None}, {"session_id": 42},
                 {"message": "x" * 20000, "session_id": "garbage-session-1"}]:
        await client.emit("user_uttered", junk)
    await client.emit("session_request", "garbage")
    await client.emit("no_such_event", {"a": 1})
    await asyncio.sleep(1)
    await client.disconnect()
    (greeting,) = await converse(stack, "你好")
    assert matches_response(greeting["text"], "utter_greet")


async def test_browsers_may_connect_only_from_configured_origins(stack):
    url = f"http://127.0.0.1:{stack.rasa_port}"
    allowed = socketio.AsyncClient(reconnection=False)
    await allowed.connect(url, transports=["websocket"], socketio_path="/socket.io",
                          headers={"Origin": f"http://127.0.0.1:{stack.web_port}"})
    await allowed.disconnect()
    foreign = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await foreign.connect(url, transports=["websocket"], socketio_path="/socket.io",
                              headers={"Origin": "https://evil.example"})
