"""The WeChat API client against a fake WeChat server and a real Redis."""

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

import bot.channels.wechat.client as client_module
from bot.channels.wechat.client import WeChatApi, WeChatApiError, WeChatUndeliverable
from tests.channels.fake_wechat import FakeWeChat


@pytest.fixture
async def env(redis_url, aiohttp_server, monkeypatch):
    monkeypatch.setattr(client_module, "TOKEN_KEY", f"test:{uuid.uuid4().hex}:token")
    monkeypatch.setattr(client_module, "TYPING_PREFIX", f"test:{uuid.uuid4().hex}:typing:", raising=False)
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


async def test_processes_refused_the_same_token_refresh_it_once_and_all_use_the_new_one(redis_url, aiohttp_server, monkeypatch):
    """Ten processes (each its own Redis client and HTTP session) get 40001 for the same token."""
    monkeypatch.setattr(client_module, "TOKEN_KEY", f"test:{uuid.uuid4().hex}:token")
    fake = FakeWeChat()
    server = await aiohttp_server(fake.app())
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(10)]
    apis = [WeChatApi(str(server.make_url("")), "wxappid", "secret", client, backoff_s=0.01) for client in clients]
    shared_during_refresh = []
    try:
        await apis[0].send_text("oU0", "预热")
        fake.valid_tokens = set()  # WeChat no longer accepts token-1
        fake.token_delay_s = 0.3  # the refresh takes a while: every process sees 40001 first

        async def observe(api, n):
            await api.send_text(f"oU{n}", f"消息{n}")
            shared_during_refresh.append(await clients[n].get(client_module.TOKEN_KEY))

        await asyncio.gather(*(observe(api, n) for n, api in enumerate(apis)))
        assert fake.tokens_issued == 2
        assert all(fake.texts_to(f"oU{n}") == [f"消息{n}"] for n in range(1, 10))
        assert set(shared_during_refresh) == {b"token-2"}
        assert await clients[0].get(client_module.TOKEN_KEY + ":refresh") is None  # the lock was released
    finally:
        for api in apis:
            await api.close()
        for client in clients:
            await client.close()


async def test_the_shared_token_is_kept_until_its_replacement_is_stored(env, redis_url):
    fake, (one, _) = env
    await one.send_text("oU1", "一")
    fake.valid_tokens = set()
    fake.token_delay_s = 0.3
    reader = aioredis.Redis.from_url(redis_url)
    try:
        sending = asyncio.create_task(one.send_text("oU1", "二"))
        seen = set()
        while not sending.done():
            seen.add(await reader.get(client_module.TOKEN_KEY))
            await asyncio.sleep(0.02)
        await sending
    finally:
        await reader.close()
    assert seen <= {b"token-1", b"token-2"} and b"token-1" in seen  # never missing in between


async def test_a_token_refused_after_another_process_replaced_it_is_not_refreshed_again(env, redis_url):
    fake, (one, _) = env
    await one.send_text("oU1", "一")
    other_process = aioredis.Redis.from_url(redis_url)

    async def refreshed_meanwhile():  # while our call is in flight, another process renewed the token
        fake.before_send = None
        fake.valid_tokens = {"token-by-another-process"}
        await other_process.set(client_module.TOKEN_KEY, "token-by-another-process")

    fake.before_send = refreshed_meanwhile
    try:
        await one.send_text("oU1", "二")
    finally:
        await other_process.close()
    assert fake.tokens_issued == 1 and fake.texts_to("oU1") == ["一", "二"]


@pytest.mark.parametrize("refusal", [45080, 45081])
async def test_typing_is_best_effort_and_not_repeated_while_shown(env, refusal):
    fake, (one, two) = env
    fake.typing_refusal = refusal
    await one.typing("oU1")  # refused (45080) or shown: never raises
    await one.typing("oU1")  # still shown (or just refused): not sent again
    await two.typing("oU1")  # nor by another process
    assert fake.typing_calls == 1
    await one.send_text("oU1", "好的")  # a message ends the typing state
    await two.typing("oU1")
    await two.typing("oU1")
    assert fake.typing_calls == 2 and len(fake.typing_refused) == (2 if refusal == 45080 else 1)
