"""The WeChat channel registered as Rasa registers it, on a loopback Sanic server, with a real Redis
and the fake WeChat API; a stand-in agent answers every message at once. Shared by the channel's
tests."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import AsyncIterator, Dict, List, Tuple

import aiohttp
from rasa.core.channels.channel import register
from sanic import Sanic

from bot.channels.wechat.channel import WeChatInput
from tests.channels.fake_wechat import FakeWeChat
from tests.conftest import free_port

TOKEN = "channel-test-token"
APPID = "wxtestappid00001"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ORIGINAL_ID = "gh_0123456789ab"


class Shop:
    """Stands in for Rasa's agent: records each message and answers it through the channel."""

    def __init__(self) -> None:
        self.received: List[str] = []
        self.senders: List[str] = []

    async def handle_message(self, message) -> None:
        self.received.append(message.text)
        self.senders.append((message.metadata or {}).get("wechat_openid"))  # the conversation id is namespaced
        await message.output_channel.send_response(message.sender_id, {"text": f"收到：{message.text}"})  # as Rasa does


@dataclass
class Endpoint:
    """One replica of the channel: its webhook URL and what reached its stand-in agent."""

    url: str
    shop: Shop
    channel: WeChatInput
    http: aiohttp.ClientSession
    fake: FakeWeChat = field(repr=False)

    async def post(self, query: Dict[str, str], body: bytes) -> Tuple[int, str]:
        async with self.http.post(self.url + "?" + urllib.parse.urlencode(query), data=body) as response:
            return response.status, await response.text()


@asynccontextmanager
async def wechat_channel(redis_url: str, fake: FakeWeChat, api_base: str, credentials: Dict[str, str]) -> AsyncIterator[Endpoint]:
    """The channel made by `from_credentials`, as Rasa makes it from credentials.yml."""
    app = Sanic(f"wechat_channel_test_{uuid.uuid4().hex[:8]}")
    app.ctx.agent = shop = Shop()
    channel = WeChatInput.from_credentials({"token": TOKEN, "appid": APPID, "secret": "secret", "api_base": api_base,
                                            "redis_url": redis_url, **credentials})
    register([channel], app, "/webhooks/")
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False)
    await server.startup()
    await server.after_start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Endpoint(f"http://127.0.0.1:{port}/webhooks/wechat/webhook", shop, channel, http, fake)
    finally:
        await asyncio.gather(*channel.tasks, return_exceptions=True)
        server.close()
        await server.wait_closed()
        await channel.api.close()
        await channel.redis.close()


async def replies(fake: FakeWeChat, openid: str, count: int, timeout: float = 10.0) -> List[str]:
    deadline = time.monotonic() + timeout
    while len(fake.texts_to(openid)) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return fake.texts_to(openid)
