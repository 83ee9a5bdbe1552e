"""Forged WeChat pushes (issue 13, finding "wechat-forged-push"), performed against the real channel
over HTTP on loopback with a real Redis: the channel as `from_credentials` makes it, in 安全模式 (an
AES key, as production should run) and in 明文模式.

The (signature, timestamp, nonce) triple is on every push URL and does not cover a plaintext body,
so whoever saw one access-log line could post any body as any openid. Each attack below passes only
when the push is refused (403) and nothing reaches the agent, and each checks that a genuine push
still gets through, so refusing everything would not pass.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis.asyncio as aioredis
from sanic import Sanic

import bot.channels.wechat.client as client_module
from bot.channels.wechat.crypto import signature
from tests.channels.fake_wechat import FakeWeChat, WeChatPusher
from tests.channels.wechat_harness import AES_KEY, APPID, ORIGINAL_ID, TOKEN, replies, wechat_channel

attack = pytest.mark.attack("wechat-forged-push")
NINETY_DAYS_S = 90 * 86400
SAFE = {"aes_key": AES_KEY, "original_id": ORIGINAL_ID}  # 安全模式
PLAIN = {"aes_key": "", "original_id": ORIGINAL_ID}  # 明文模式


@pytest.fixture
async def wechat(aiohttp_server, monkeypatch):
    monkeypatch.setattr(client_module, "TOKEN_KEY", f"test:{uuid.uuid4().hex}:token")
    monkeypatch.setattr(Sanic, "test_mode", True)  # lets Sanic start more than once in one process
    fake = FakeWeChat()
    server = await aiohttp_server(fake.app())
    return fake, str(server.make_url(""))


@pytest.fixture
def start(redis_url, wechat):
    fake, api_base = wechat
    return lambda credentials: wechat_channel(redis_url, fake, api_base, credentials)


def pusher(credentials) -> WeChatPusher:
    return WeChatPusher(TOKEN, APPID, credentials["aes_key"], ORIGINAL_ID)


def openid(tag: str) -> str:
    return f"o{tag}{uuid.uuid4().hex[:10]}"


async def nothing_processed(endpoint, *openids: str) -> None:
    await asyncio.sleep(0.3)  # processing happens in the background after the answer
    assert not any(sender in openids for sender in endpoint.shop.senders)  # the openids that reached the agent
    assert all(endpoint.fake.texts_to(o) == [] for o in openids)


async def genuine_push_is_answered(endpoint, wechat_pusher: WeChatPusher) -> None:
    shopper = openid("Real")
    assert await endpoint.post(*wechat_pusher.request(wechat_pusher.text(shopper, "你好"))) == (200, "success")
    assert await replies(endpoint.fake, shopper, 1) == ["收到：你好"]


@attack
@pytest.mark.parametrize("mode", [SAFE, PLAIN], ids=["safe-mode", "plain-mode"])
async def test_a_90_day_old_triple_pushed_with_a_new_body_as_another_openid_is_refused(start, mode):
    """The review's proof: a triple from an old access-log line, 「我要退货」 as someone else."""
    wechat_pusher = pusher(mode)
    old = str(int(time.time()) - NINETY_DAYS_S)
    logged_query, _ = wechat_pusher.request(wechat_pusher.text(openid("Then"), "你好"), timestamp=old)
    victim = openid("Victim")
    forged_body = WeChatPusher(TOKEN, APPID).request(wechat_pusher.text(victim, "我要退货"))[1]  # plaintext, anyone can write it
    async with start(mode) as endpoint:
        assert (await endpoint.post(logged_query, forged_body))[0] == 403
        await nothing_processed(endpoint, victim)
        await genuine_push_is_answered(endpoint, wechat_pusher)


@attack
@pytest.mark.parametrize("mode", [SAFE, PLAIN], ids=["safe-mode", "plain-mode"])
async def test_a_fresh_triple_used_a_second_time_is_refused_by_every_replica(start, mode):
    """A genuine push's triple, seen a moment ago, replayed: the same request, or (明文模式, where the
    signature does not cover the body) a new body as another openid; on the same and another replica."""
    wechat_pusher = pusher(mode)
    shopper, victim = openid("Shopper"), openid("Victim")
    query, body = wechat_pusher.request(wechat_pusher.text(shopper, "你好"))
    async with start(mode) as one, start(mode) as two:
        assert await one.post(query, body) == (200, "success")
        assert await replies(one.fake, shopper, 1) == ["收到：你好"]
        assert (await one.post(query, body))[0] == 403
        assert (await two.post(query, body))[0] == 403
        if mode is PLAIN:
            forged = WeChatPusher(TOKEN, APPID).request(wechat_pusher.text(victim, "我要退货"))[1]
            assert (await one.post(query, forged))[0] == 403
            assert (await two.post(query, forged))[0] == 403
        await nothing_processed(two, victim)
        assert one.shop.received + two.shop.received == ["你好"]
        await genuine_push_is_answered(two, wechat_pusher)


@attack
@pytest.mark.parametrize("as_xml", [False, True], ids=["json", "xml"])
async def test_plaintext_with_a_valid_signature_is_refused_when_the_aes_key_is_configured(start, as_xml):
    wechat_pusher = pusher(SAFE)
    victim = openid("Victim")
    query, body = wechat_pusher.request(wechat_pusher.text(victim, "我要退货"), as_xml=as_xml, encrypted=False)
    async with start(SAFE) as endpoint:
        assert (await endpoint.post(query, body))[0] == 403
        await nothing_processed(endpoint, victim)
        await genuine_push_is_answered(endpoint, wechat_pusher)


@attack
@pytest.mark.parametrize("mode", [SAFE, PLAIN], ids=["safe-mode", "plain-mode"])
async def test_a_push_addressed_to_another_mini_program_is_refused(start, mode):
    """Correctly signed (and, in 安全模式, encrypted with our key and appid), but its ToUserName
    inside is not our original id."""
    wechat_pusher = pusher(mode)
    victim = openid("Victim")
    query, body = wechat_pusher.request(wechat_pusher.text(victim, "我要退货", ToUserName="gh_somebodyelse"))
    async with start(mode) as endpoint:
        assert (await endpoint.post(query, body))[0] == 403
        await nothing_processed(endpoint, victim)
        await genuine_push_is_answered(endpoint, wechat_pusher)


async def test_an_encrypt_body_with_a_wrong_msg_signature_is_refused(start):
    """Also refused before issue 13 (so not an attack test): msg_signature must cover Encrypt; the
    plain `signature` of the same triple, or a signature over another ciphertext, is not enough."""
    wechat_pusher = pusher(SAFE)
    victim = openid("Victim")
    async with start(SAFE) as endpoint:
        for wrong in ("the plain signature", "zeros", "over another ciphertext"):
            query, body = wechat_pusher.request(wechat_pusher.text(victim, "我要退货"))
            other = wechat_pusher.crypto.encrypt("<xml/>")
            query["msg_signature"] = {"the plain signature": query["signature"], "zeros": "0" * 40,
                                      "over another ciphertext": signature(TOKEN, query["timestamp"], query["nonce"], other)}[wrong]
            assert (await endpoint.post(query, body))[0] == 403, wrong
        await nothing_processed(endpoint, victim)
        await genuine_push_is_answered(endpoint, wechat_pusher)


@pytest.mark.parametrize("as_xml", [False, True], ids=["json", "xml"])
async def test_a_genuine_encrypted_push_is_processed_and_answered(start, as_xml):
    wechat_pusher = pusher(SAFE)
    shopper = openid("Shopper")
    async with start(SAFE) as endpoint:
        query, body = wechat_pusher.request(wechat_pusher.text(shopper, "我要退货"), as_xml=as_xml)
        assert b"Encrypt" in body and "我要退货".encode() not in body
        assert await endpoint.post(query, body) == (200, "success")
        assert await replies(endpoint.fake, shopper, 1) == ["收到：我要退货"]
        assert endpoint.shop.senders == [shopper]


@pytest.mark.parametrize("skew_s, accepted", [(-299, True), (290, True), (-301, False), (301, False)])
async def test_timestamps_are_accepted_within_five_minutes_of_our_clock(start, skew_s, accepted):
    wechat_pusher = pusher(SAFE)
    shopper = openid("Clock")
    query, body = wechat_pusher.request(wechat_pusher.text(shopper, "你好"), timestamp=str(int(time.time()) + skew_s))
    async with start(SAFE) as endpoint:
        assert (await endpoint.post(query, body))[0] == (200 if accepted else 403)
        if accepted:
            assert await replies(endpoint.fake, shopper, 1) == ["收到：你好"]
        else:
            await nothing_processed(endpoint, shopper)


@pytest.mark.parametrize("timestamp", ["", "abc", "1e9", "-5", "17140365041714036504"])
async def test_a_malformed_timestamp_is_refused(start, timestamp):
    wechat_pusher = pusher(PLAIN)
    query, body = wechat_pusher.request(wechat_pusher.text(openid("Odd"), "你好"))
    query.update(timestamp=timestamp, signature=signature(TOKEN, timestamp, query["nonce"]))
    async with start(PLAIN) as endpoint:
        assert (await endpoint.post(query, body))[0] == 403


async def test_a_used_pair_is_remembered_in_redis_for_longer_than_a_timestamp_stays_acceptable(start, redis_url):
    wechat_pusher = pusher(SAFE)
    query, body = wechat_pusher.request(wechat_pusher.text(openid("Ttl"), "你好"))
    async with start(SAFE) as endpoint:
        assert (await endpoint.post(query, body))[0] == 200
    client = aioredis.Redis.from_url(redis_url)
    try:
        ttl = await client.ttl(f"xb:wechat:nonce:{query['msg_signature']}:{query['nonce']}")
    finally:
        await client.close()
    assert 2 * 300 < ttl <= 2 * 300 + 120  # a timestamp 5 min ahead stays acceptable for 10 min


async def test_an_encrypted_push_is_refused_in_plain_mode(start):
    """Without an AES key the channel cannot read ciphertext: refused, not half-processed."""
    safe_pusher = pusher(SAFE)
    query, body = safe_pusher.request(safe_pusher.text(openid("Enc"), "你好"))
    async with start(PLAIN) as endpoint:
        assert (await endpoint.post(query, body))[0] == 403


async def test_without_an_original_id_the_recipient_is_not_checked_and_a_warning_is_logged(start, caplog, monkeypatch):
    monkeypatch.delenv("WECHAT_ORIGINAL_ID", raising=False)
    wechat_pusher = pusher(SAFE)
    shopper = openid("NoId")
    with caplog.at_level("WARNING", logger="bot.channels.wechat.channel"):
        async with start({"aes_key": AES_KEY}) as endpoint:
            assert "WECHAT_ORIGINAL_ID is not set" in caplog.text
            query, body = wechat_pusher.request(wechat_pusher.text(shopper, "你好", ToUserName="gh_whatever"))
            assert await endpoint.post(query, body) == (200, "success")
            assert await replies(endpoint.fake, shopper, 1) == ["收到：你好"]


async def test_the_original_id_may_come_from_the_environment(start, monkeypatch):
    monkeypatch.setenv("WECHAT_ORIGINAL_ID", ORIGINAL_ID)
    wechat_pusher = pusher(SAFE)
    async with start({"aes_key": AES_KEY}) as endpoint:
        assert endpoint.channel.original_id == ORIGINAL_ID
        query, body = wechat_pusher.request(wechat_pusher.text(openid("Env"), "你好", ToUserName="gh_somebodyelse"))
        assert (await endpoint.post(query, body))[0] == 403
