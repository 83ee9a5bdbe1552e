"""Bad messages: malformed bodies get HTTP 400 with a JSON error; odd text gets a polite reply, never a 500."""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

from bot.channels.polite import system_message
from tests.integration.conftest import matches_response, socket_session

pytestmark = pytest.mark.integration
_CJK = re.compile(r"[\u4e00-\u9fff]")


def new_sender() -> str:
    return f"shopper-{uuid.uuid4().hex[:12]}"


def post(stack, body: bytes, content_type: str = "application/json"):
    """(HTTP status, parsed JSON answer) of one raw POST to the REST webhook."""
    request = urllib.request.Request(f"http://127.0.0.1:{stack.rasa_port}/webhooks/rest/webhook", data=body,
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def message(text, sender=None, **extra) -> bytes:
    return json.dumps({"sender": new_sender() if sender is None else sender, "message": text, **extra}).encode()


def assert_polite(replies):
    """A real answer in Chinese: not silence, and not the apology for a turn that failed."""
    assert replies, "the shopper must never meet silence"
    assert replies[0]["text"] != system_message("turn_failed")
    assert _CJK.search(replies[0]["text"])


def user_texts(stack, sender):
    events = stack.api(f"/conversations/{sender}/tracker", token=stack.token)["events"]
    return [e["text"] for e in events if e["event"] == "user"]


@pytest.mark.parametrize("body, content_type", [
    (b"hello there", "text/plain"),
    (b'{"sender": "x", "message": "\xff\xfe\x00"}', "application/json"),  # not UTF-8
    (b"", "application/json"),
    (b"null", "application/json"),
    (b'["sender", "message"]', "application/json"),
    (message(12345), "application/json"),
    (message({"text": "你好"}), "application/json"),
    (message(None), "application/json"),
    (json.dumps({"sender": "x"}).encode(), "application/json"),
    (json.dumps({"message": "你好"}).encode(), "application/json"),
    (message("你好", sender=""), "application/json"),
    (message("你好", sender="x" * 1000), "application/json"),
    (message("你好", metadata="customer_token"), "application/json"),
], ids=["not-json", "not-utf8", "empty-body", "null", "list", "number-message", "object-message", "null-message",
        "no-message", "no-sender", "empty-sender", "huge-sender", "string-metadata"])
def test_malformed_bodies_get_400_with_a_json_error(stack, body, content_type):
    status, answer = post(stack, body, content_type)
    assert status == 400
    assert answer["error"] and answer["text"] == system_message("bad_request")


@pytest.mark.parametrize("text", [
    "\x00\x01\x02\x07\x1b\x7f",
    "\udfff\ud800",  # lone UTF-16 surrogates, as JSON escapes deliver them; spaCy cannot encode them
], ids=["control-characters", "lone-surrogates"])
def test_text_without_words_gets_the_unreadable_reply(stack, text):
    """Like the empty and emoji-only messages in test_stack.py."""
    status, replies = post(stack, message(text))
    assert status == 200
    assert matches_response(replies[0]["text"], "utter_unreadable")


def test_binary_garbage_gets_a_polite_reply_and_is_stored(stack):
    sender, rng = new_sender(), random.Random(7)
    garbage = bytes(rng.randrange(256) for _ in range(2000)).decode("latin-1")
    status, replies = post(stack, message(garbage, sender))
    assert status == 200
    assert_polite(replies)
    assert user_texts(stack, sender) == [garbage.strip()]


@pytest.mark.parametrize("alphabet", ["latin-1", "cjk"])
def test_a_message_at_the_length_limit_is_answered_quickly_without_stalling_others(stack, alphabet):
    rng, sender = random.Random(10_000), new_sender()
    if alphabet == "cjk":
        text = "".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(2000))
    else:
        text = "".join(chr(rng.randrange(0x21, 0x100)) for _ in range(2000))
    others = []

    def other_shopper():
        started = time.monotonic()
        (reply,) = stack.send(new_sender(), "你好")
        others.append((time.monotonic() - started, reply))

    other = threading.Thread(target=other_shopper)
    started = time.monotonic()
    other.start()
    status, replies = post(stack, message(text, sender))
    took = time.monotonic() - started
    other.join()
    assert status == 200 and took < 5
    assert_polite(replies)
    assert user_texts(stack, sender) == [text]  # kept whole, though NLU reads both ends only
    (other_took, other_reply), = others
    assert other_took < 5 and matches_response(other_reply["text"], "utter_greet")


def test_a_message_over_the_length_limit_gets_the_too_long_reply_and_is_not_stored(stack):
    sender = new_sender()
    status, replies = post(stack, message("退" * 2001, sender))
    assert status == 200
    assert [reply["text"] for reply in replies] == [system_message("message_too_long").format(max_chars=2000)]
    assert user_texts(stack, sender) == []


def test_a_rest_client_cannot_pass_for_the_wechat_channel(stack):
    """The WeChat channel vouches for openids; a REST body naming itself 'wechat' must not."""
    body = message("我要退货", input_channel="wechat", metadata={"wechat_openid": "oDemoOpenId0001"})
    status, (reply,) = post(stack, body)
    assert status == 200
    assert matches_response(reply["text"], "utter_ask_order_id_number")  # anonymous, not 王女士's orders


async def test_socketio_garbage_events_get_a_polite_reply_and_odd_text_an_answer(stack):
    async with socket_session(stack) as (client, replies, session_id, _):
        for junk in ["not a dict", 12345, [1, 2], {"message": 42, "session_id": session_id}]:
            await client.emit("user_uttered", junk)
            reply = await asyncio.wait_for(replies.get(), timeout=30)
            assert reply["text"] == system_message("bad_request")
        for text in ["\x00\x01\x1b", "\ud800", None, "😂😂"]:
            await client.emit("user_uttered", {"message": text, "session_id": session_id})
            reply = await asyncio.wait_for(replies.get(), timeout=30)
            assert matches_response(reply["text"], "utter_unreadable")
