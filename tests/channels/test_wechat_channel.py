"""The WeChat channel registered as Rasa registers it, on a loopback Sanic server, with a real Redis
and the fake WeChat API (tests/channels/wechat_harness.py); a stand-in agent answers every message
at once. Pushes are what WeChat sends in 安全模式 (see also test_wechat_push_authenticity.py)."""

from __future__ import annotations

import time
import uuid

import pytest
from sanic import Sanic

import bot.channels.wechat.client as client_module
from tests.channels.fake_wechat import FakeWeChat, WeChatPusher
from tests.channels.wechat_harness import AES_KEY, APPID, ORIGINAL_ID, TOKEN, replies, wechat_channel


@pytest.fixture
async def channel(redis_url, aiohttp_server, monkeypatch):
    monkeypatch.setattr(client_module, "TOKEN_KEY", f"test:{uuid.uuid4().hex}:token")
    monkeypatch.setattr(Sanic, "test_mode", True)  # lets Sanic start more than once in one process
    fake = FakeWeChat()
    wechat = await aiohttp_server(fake.app())
    pusher = WeChatPusher(TOKEN, APPID, AES_KEY, ORIGINAL_ID)
    async with wechat_channel(redis_url, fake, str(wechat.make_url("")),
                              {"aes_key": AES_KEY, "original_id": ORIGINAL_ID}) as endpoint:

        async def push(openid: str, content: str) -> str:
            return (await endpoint.post(*pusher.request(pusher.text(openid, content))))[1]

        yield fake, endpoint.shop, push


@pytest.mark.parametrize("refusal", [45081, 45080])
async def test_quick_messages_are_all_answered_while_wechat_refuses_typing(channel, refusal):
    fake, shop, push = channel
    fake.typing_refusal = refusal
    openid = f"oQuick{uuid.uuid4().hex[:8]}"
    messages = ["在吗", "我要退货", "订单号是多少来着", "谢谢"]  # four within a second, under the 5/s limit
    for content in messages:
        assert await push(openid, content) == "success"
    answered = await replies(fake, openid, len(messages))
    assert sorted(shop.received) == sorted(messages)
    assert sorted(answered) == sorted(f"收到：{m}" for m in messages)
    assert fake.typing_calls >= 1  # the indicator was tried, and refusals changed nothing


async def test_a_slow_typing_call_does_not_delay_the_reply(channel):
    fake, shop, push = channel
    fake.typing_delay_s = 3.0
    openid = f"oSlow{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    assert await push(openid, "你好") == "success"
    assert await replies(fake, openid, 1, timeout=1.5) == ["收到：你好"]
    assert time.monotonic() - started < 1.5
