"""Flood: 50 messages a second from one sender are limited before NLU, and the others keep their pace."""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.channels.polite import system_message
from tests.integration.conftest import matches_response, socket_session

pytestmark = pytest.mark.integration
FLOOD, PER_SECOND = 50, 5  # PER_SECOND: the default SENDER_MAX_PER_SECOND
SCRIPT = [("你好", "utter_greet"), ("我的快递到哪了", "utter_ask_order_id_number"), ("谢谢", "utter_thanks")]


def new_sender() -> str:
    return f"shopper-{uuid.uuid4().hex[:12]}"


def post(stack, sender: str, text: str):
    """(HTTP status, the bot's messages) of one REST message; HTTP errors are returned, not raised."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.rasa_port}/webhooks/rest/webhook",
        data=json.dumps({"sender": sender, "message": text}).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, None


def converse(stack):
    """A short, ordinary conversation; checks every reply and returns each turn's latency."""
    sender, latencies = new_sender(), []
    for text, response in SCRIPT:
        started = time.monotonic()
        status, (reply,) = post(stack, sender, text)
        latencies.append(time.monotonic() - started)
        assert status == 200 and matches_response(reply["text"], response)
    return latencies


def user_turns(stack, sender: str) -> int:
    events = stack.api(f"/conversations/{sender}/tracker", token=stack.token)["events"]
    return len([e for e in events if e["event"] == "user"])


def windows(seconds: float) -> int:
    """How many one-second windows a burst lasting `seconds` can touch."""
    return int(seconds) + 2


def test_a_rest_flood_is_limited_and_other_shoppers_keep_their_pace(stack):
    converse(stack)  # warm up
    quiet = converse(stack) + converse(stack)

    flooder, results, busy, flooding = new_sender(), [], [], threading.Event()
    flooding.set()

    def other_shopper():
        while flooding.is_set() or not busy:
            busy.extend(converse(stack))

    with ThreadPoolExecutor(FLOOD + 1) as pool:
        other = pool.submit(other_shopper)
        started = time.monotonic()
        futures = []
        for _ in range(FLOOD):  # 50 in about a second, each on its own connection
            futures.append(pool.submit(post, stack, flooder, "你好"))
            time.sleep(1 / FLOOD)
        fired_in = time.monotonic() - started
        results = [f.result() for f in futures]
        flooding.clear()
        other.result()

    assert [status for status, _ in results] == [200] * FLOOD  # never a 500, never a crash
    answered = [r for _, r in results if r and r[0]["text"] != system_message("slow_down")]
    notices = [r for _, r in results if r and r[0]["text"] == system_message("slow_down")]
    assert all(matches_response(r[0]["text"], "utter_greet") for r in answered)
    assert len(answered) <= PER_SECOND * windows(fired_in) and FLOOD - len(answered) >= FLOOD // 2
    assert 1 <= len(notices) <= windows(fired_in)  # one notice a window, then silence
    assert all(len(r) == 1 for r in notices)
    assert user_turns(stack, flooder) == len(answered)  # limited messages never reached the dialogue

    print(f"flood: {len(answered)} of {FLOOD} answered in {fired_in:.2f}s; other shopper median "
          f"{statistics.median(quiet) * 1000:.0f} ms quiet, {statistics.median(busy) * 1000:.0f} ms during the flood")
    assert statistics.median(busy) <= 3 * statistics.median(quiet) + 0.25


async def test_a_socketio_flood_is_limited_with_one_notice(stack):
    async with socket_session(stack) as (client, replies, session_id, conversation):
        started = time.monotonic()
        for _ in range(FLOOD):
            await client.emit("user_uttered", {"message": "你好", "session_id": session_id})
            await asyncio.sleep(1 / FLOOD)
        fired_in = time.monotonic() - started
        await asyncio.sleep(5)  # the turns that were let through finish
    texts = [replies.get_nowait().get("text") for _ in range(replies.qsize())]
    greetings = [t for t in texts if matches_response(t or "", "utter_greet")]
    assert 1 <= len(greetings) <= PER_SECOND * windows(fired_in)
    assert 1 <= texts.count(system_message("slow_down")) <= windows(fired_in)
    assert len(texts) == len(greetings) + texts.count(system_message("slow_down"))
    assert user_turns(stack, conversation) == len(greetings)
