"""The WeChat API client against a fake WeChat server and a real Redis."""

import uuid

import pytest
import redis.asyncio as aioredis

import bot.channels.wechat.client as client_module
from bot.channels.wechat.client import WeChatApi, WeChatApiError, WeChatUndeliverable
from tests.channels.fake_wechat import FakeWeChat


@pytest.fixture
async def env(redis_url, aiohttp_server, monkeypatch):
    monkeypatch.setattr(client_module, "TOKEN_KEY", f"test:{uuid.uuid4().hex}:token")
    fake = FakeWeChat()
    server = await aiohttp_server(fake.app())
    redis = aioredis.Redis.from_url(redis_url)
    apis = [WeChatApi(str(server.make_url("")), "wxappid", "secret", redis, backoff_s=0.01) for _ in range(2)]
    yield fake, apis
    for api in apis:
        await api.close()
    await redis.close()


async def test_the_access_token_is_fetched_once_and_shared_by_every_process(env):
    fake, (one, two) = env
    await one.send_text("oU1", "你好")
    await two.send_text("oU1", "再见")
    assert fake.tokens_issued == 1 and fake.texts_to("oU1") == ["你好", "再见"]


async def test_an_expired_token_is_refreshed_once(env):
    fake, (one, two) = env
    await one.send_text("oU1", "一")
    fake.valid_tokens = set()  # WeChat rotated the token behind our back
    await two.send_text("oU1", "二")
    assert fake.tokens_issued == 2 and fake.texts_to("oU1") == ["一", "二"]


async def test_busy_is_retried_with_backoff(env):
    fake, (one, _) = env
    fake.scripted_errors = [-1, -1]
    await one.send_text("oU1", "稍等")
    assert fake.texts_to("oU1") == ["稍等"]


async def test_quota_used_up_is_undeliverable_and_other_errors_are_typed(env):
    fake, (one, _) = env
    fake.scripted_errors = [45047]
    with pytest.raises(WeChatUndeliverable) as raised:
        await one.send_text("oU1", "超额")
    assert raised.value.errcode == 45047
    fake.scripted_errors = [40003]
    with pytest.raises(WeChatApiError) as other:
        await one.send_text("bad-openid", "x")
    assert other.value.errcode == 40003 and not isinstance(other.value, WeChatUndeliverable)
