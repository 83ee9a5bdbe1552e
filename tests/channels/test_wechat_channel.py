"""The WeChat channel registered as Rasa registers it, on a loopback Sanic server, with a real Redis
and the fake WeChat API; a stand-in agent answers every message at once."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import uuid

import aiohttp
import pytest
from rasa.core.channels.channel import register
from sanic import Sanic

import bot.channels.wechat.client as client_module
from bot.channels.wechat.channel import WeChatInput
from bot.channels.wechat.crypto import signature
from tests.channels.fake_wechat import FakeWeChat
from tests.conftest import free_port

TOKEN = "channel-test-token"


class Shop:
    """Stands in for Rasa's agent: records each message and answers it through the channel."""

    def __init__(self) -> None:
        self.received = []

    async def handle_message(self, message) -> None:
        self.received.append(message.text)
        await message.output_channel.send_response(message.sender_id, {"text": f"收到：{message.text}"})  # as Rasa does


@pytest.fixture
async def channel(redis_url, aiohttp_server, monkeypatch):
    monkeypatch.setattr(client_module, "TOKEN_KEY", f"test:{uuid.uuid4().hex}:token")
    fake = FakeWeChat()
    wechat = await aiohttp_server(fake.app())
    monkeypatch.setattr(Sanic, "test_mode", True)  # lets Sanic start more than once in one process
    app = Sanic(f"wechat_channel_test_{uuid.uuid4().hex[:8]}")
    app.ctx.agent = shop = Shop()
    channel = WeChatInput(token=TOKEN, appid="wxtestappid00001", secret="secret", aes_key="",
                          api_base=str(wechat.make_url("")), redis_url=redis_url)
    register([channel], app, "/webhooks/")
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False)
    await server.startup()
    await server.after_start()
    async with aiohttp.ClientSession() as http:

        async def push(openid: str, content: str) -> str:
            timestamp, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
            query = {"timestamp": timestamp, "nonce": nonce, "signature": signature(TOKEN, timestamp, nonce)}
            body = {"ToUserName": "gh_test", "FromUserName": openid, "CreateTime": int(time.time()),
                    "MsgType": "text", "Content": content, "MsgId": str(uuid.uuid4().int)[:18]}
            url = f"http://127.0.0.1:{port}/webhooks/wechat/webhook?" + urllib.parse.urlencode(query)
            async with http.post(url, data=json.dumps(body, ensure_ascii=False).encode()) as response:
                return await response.text()

        yield fake, shop, push
    await asyncio.gather(*channel.tasks, return_exceptions=True)
    server.close()
    await server.wait_closed()
    await channel.api.close()
    await channel.redis.close()


async def replies(fake: FakeWeChat, openid: str, count: int, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while len(fake.texts_to(openid)) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return fake.texts_to(openid)


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
