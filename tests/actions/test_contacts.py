"""customer_of remembers where a verified customer was seen, and never lets that bookkeeping
cost the shopper an answer (real Redis; a dead and a hanging Redis for the failures)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid

import pytest
from rasa_sdk import Tracker

import actions.services as services
from bot.identity import sign_customer_token
from bot.identity_bindings import RedisIdentityBindings
from bot.redis_url import async_redis
from bot.risk.contacts import ContactBook
from bot.settings import Settings
from tests.conftest import free_port

SECRET = "test-store-signing-secret"


def tracker(sender: str, metadata: dict, input_channel: str) -> Tracker:
    latest = {"text": "我的订单", "intent": {"name": "order_status", "confidence": 1.0}, "entities": [],
              "metadata": metadata}
    event = {"event": "user", "text": "我的订单", "parse_data": latest, "metadata": metadata,
             "input_channel": input_channel}
    return Tracker(sender, {}, latest, [event], False, None, {}, "action_listen")


@pytest.fixture
async def redis(redis_url):
    client = async_redis(redis_url)
    yield client
    await client.close()


@pytest.fixture
def book(redis, monkeypatch):
    book = ContactBook(redis, prefix=f"test:{uuid.uuid4().hex}:")
    monkeypatch.setattr(services, "settings", lambda: dataclasses.replace(Settings.from_env({}), store_signing_secret=SECRET))
    monkeypatch.setattr(services, "contact_book", lambda: book)
    return book


async def test_a_verified_web_customer_is_remembered_with_the_conversation(book):
    token = sign_customer_token("c1001", SECRET)
    assert await services.customer_of(tracker("web:0123456789abcdef", {"customer_token": token}, "socketio")) == "c1001"
    [seen] = await book.conversations_of("c1001")
    assert (seen["conversation_id"], seen["channel"]) == ("web:0123456789abcdef", "web")
    assert abs(seen["at"] - time.time()) < 5


async def test_a_verified_wechat_customer_is_remembered_by_openid_conversation(book, redis, monkeypatch):
    bindings = RedisIdentityBindings(redis, prefix=f"test:{uuid.uuid4().hex}:openid:")
    await bindings.bind_openid("oShopper1", "c1002")

    async def no_seeding():
        return None

    monkeypatch.setattr(services, "identity_bindings", lambda: bindings)
    monkeypatch.setattr(services, "order_system", no_seeding)
    found = await services.customer_of(tracker("wx:oShopper1", {"wechat_openid": "oShopper1"}, "wechat"))
    assert found == "c1002"
    assert [(c["conversation_id"], c["channel"]) for c in await book.conversations_of("c1002")] == [("wx:oShopper1", "wechat")]


@pytest.mark.parametrize("metadata", [
    {"customer_token": "v1.c1001.9999999999.forged"},  # a token nobody signed
    {"customer_token": sign_customer_token("c1001", "another-secret")},
    {"customer_token": sign_customer_token("c1001", SECRET, now=time.time() - 7200)},  # expired
    {"customer_id": "c1001"},  # a claim, not a proof
])
async def test_an_unverified_claim_is_never_remembered(book, metadata):
    assert await services.customer_of(tracker("shopper-1", metadata, "rest")) is None
    assert await book.conversations_of("c1001") == []


async def test_a_dead_redis_never_breaks_customer_of(monkeypatch):
    dead = ContactBook(async_redis(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5))
    monkeypatch.setattr(services, "settings", lambda: dataclasses.replace(Settings.from_env({}), store_signing_secret=SECRET))
    monkeypatch.setattr(services, "contact_book", lambda: dead)
    token = sign_customer_token("c1001", SECRET)
    assert await services.customer_of(tracker("shopper-1", {"customer_token": token}, "rest")) == "c1001"


async def test_a_hanging_redis_delays_customer_of_at_most_the_contact_timeout(monkeypatch):
    async def accept_and_say_nothing(reader, writer):
        await reader.read()  # until the client hangs up
        writer.close()

    server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = async_redis(f"redis://127.0.0.1:{port}/0")
    hanging = ContactBook(client)
    monkeypatch.setattr(services, "settings", lambda: dataclasses.replace(Settings.from_env({}), store_signing_secret=SECRET))
    monkeypatch.setattr(services, "contact_book", lambda: hanging)
    started = time.monotonic()
    token = sign_customer_token("c1001", SECRET)
    assert await services.customer_of(tracker("shopper-1", {"customer_token": token}, "rest")) == "c1001"
    assert time.monotonic() - started < services.CONTACT_TIMEOUT_S + 1.0
    await client.connection_pool.disconnect()
    server.close()
    await server.wait_closed()
