"""WeChat openid bindings behind one interface: the Redis store and the HTTP identity service pass
the same tests, and the action server recognises a bound WeChat shopper whichever order system
is configured (issue 12: not behind the demo order store's keys)."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from rasa_sdk import Tracker

from actions import services
from bot.identity_bindings import (HttpIdentityBindings, IdentityUnavailable, RedisIdentityBindings,
                                   identity_bindings_for)
from bot.orders.http_client import HttpOrderSystem
from bot.settings import Settings

TOKEN = "identity-test-token"
BINDINGS = web.AppKey("bindings", dict)


def identity_app(token: str = TOKEN) -> web.Application:
    """A shop's identity service implementing HttpIdentityBindings' contract."""

    @web.middleware
    async def auth(request: web.Request, handler):
        if request.headers.get("Authorization") != f"Bearer {token}":
            raise web.HTTPUnauthorized()
        return await handler(request)

    async def get_binding(request: web.Request) -> web.Response:
        customer = request.app[BINDINGS].get(request.match_info["openid"])
        if customer is None:
            raise web.HTTPNotFound()
        return web.json_response({"customer_id": customer})

    async def put_binding(request: web.Request) -> web.Response:
        request.app[BINDINGS][request.match_info["openid"]] = (await request.json())["customer_id"]
        return web.json_response({}, status=200)

    app = web.Application(middlewares=[auth])
    app[BINDINGS] = {}
    app.add_routes([web.get("/wechat/bindings/{openid}", get_binding),
                    web.put("/wechat/bindings/{openid}", put_binding)])
    return app


@pytest.fixture
async def redis_client(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.close()


@pytest.fixture(params=["redis", "http"])
async def bindings(request, redis_client, aiohttp_server):
    if request.param == "redis":
        yield RedisIdentityBindings(redis_client, prefix=f"test:{uuid.uuid4().hex}:")
        return
    server = await aiohttp_server(identity_app())
    client = HttpIdentityBindings(str(server.make_url("")), TOKEN)
    yield client
    await client.close()


async def test_a_bound_openid_names_its_customer_and_an_unbound_one_nobody(bindings):
    openid = f"o-{uuid.uuid4().hex}"
    assert await bindings.customer_for_openid(openid) is None
    await bindings.bind_openid(openid, "c2001")
    assert await bindings.customer_for_openid(openid) == "c2001"
    await bindings.bind_openid(openid, "c2002")  # re-binding replaces
    assert await bindings.customer_for_openid(openid) == "c2002"
    assert await bindings.customer_for_openid(f"o-{uuid.uuid4().hex}") is None
    assert await bindings.customer_for_openid("") is None


async def test_openids_with_url_characters_stay_apart(bindings):
    odd = f"o/{uuid.uuid4().hex}?x=1#"
    await bindings.bind_openid(odd, "c3001")
    assert await bindings.customer_for_openid(odd) == "c3001"
    assert await bindings.customer_for_openid(odd.split("?")[0]) is None


async def test_empty_bindings_are_refused(bindings):
    with pytest.raises(ValueError):
        await bindings.bind_openid("o-x", "")
    with pytest.raises(ValueError):
        await bindings.bind_openid("", "c1")


async def test_the_redis_store_keeps_bindings_apart_from_the_order_store(redis_client):
    store = RedisIdentityBindings(redis_client)
    openid = f"o-{uuid.uuid4().hex}"
    await store.bind_openid(openid, "c4001")
    assert await redis_client.get(f"xb:identity:wechat:{openid}") == b"c4001"
    assert await redis_client.get(f"xb:oms:wechat:{openid}") is None


async def test_failures_are_reported_as_unavailable(aiohttp_server):
    server = await aiohttp_server(identity_app(token="another-token"))  # refuses our token: 401
    refused = HttpIdentityBindings(str(server.make_url("")), TOKEN)
    with pytest.raises(IdentityUnavailable):
        await refused.customer_for_openid("o-1")
    await refused.close()
    unreachable = HttpIdentityBindings("http://127.0.0.1:1", TOKEN, timeout_s=1)
    with pytest.raises(IdentityUnavailable):
        await unreachable.customer_for_openid("o-1")
    await unreachable.close()
    down = RedisIdentityBindings(aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2))
    with pytest.raises(IdentityUnavailable):
        await down.customer_for_openid("o-1")


async def test_the_environment_chooses_the_implementation(redis_client):
    assert isinstance(identity_bindings_for(redis_client, {}), RedisIdentityBindings)
    chosen = identity_bindings_for(redis_client, {"IDENTITY_BASE_URL": "http://id.example", "IDENTITY_TOKEN": "t"})
    assert isinstance(chosen, HttpIdentityBindings)


# ---------------------------------------------------------------------------------------------
# The action server: customer_of
# ---------------------------------------------------------------------------------------------


def wechat_tracker(openid: str, channel: str = "wechat") -> Tracker:
    user = {"event": "user", "text": "我的订单", "input_channel": channel, "metadata": {"wechat_openid": openid},
            "parse_data": {"intent": {"name": "order_status"}, "entities": []}}
    return Tracker(f"wx-{openid}", {}, user["parse_data"], [user], False, None, {}, "action_listen")


@pytest.fixture
def action_server(redis_client, monkeypatch):
    """services wired to the test Redis, with the order system the test chooses."""
    def configure(env):
        monkeypatch.setattr(services, "_redis", lambda: redis_client)
        monkeypatch.setattr(services, "settings", lambda: Settings.from_env(env))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        services._order_system.cache_clear()
        services.identity_bindings.cache_clear()
    yield configure
    services._order_system.cache_clear()
    services.identity_bindings.cache_clear()


async def test_a_wechat_shopper_bound_through_the_interface_is_known_with_the_http_order_system(action_server):
    action_server({"ORDER_SYSTEM_BASE_URL": "http://127.0.0.1:1", "ORDER_SYSTEM_TOKEN": "t"})
    assert isinstance(services._order_system(), HttpOrderSystem)
    openid = f"o-{uuid.uuid4().hex}"
    assert await services.customer_of(wechat_tracker(openid)) is None
    await services.identity_bindings().bind_openid(openid, "c5001")
    assert await services.customer_of(wechat_tracker(openid)) == "c5001"
    # Only the WeChat channel may vouch for an openid.
    assert await services.customer_of(wechat_tracker(openid, channel="rest")) is None


async def test_an_http_identity_service_is_used_with_the_http_order_system(action_server, aiohttp_server):
    server = await aiohttp_server(identity_app())
    action_server({"ORDER_SYSTEM_BASE_URL": "http://127.0.0.1:1", "ORDER_SYSTEM_TOKEN": "t",
                   "IDENTITY_BASE_URL": str(server.make_url("")), "IDENTITY_TOKEN": TOKEN})
    openid = f"o-{uuid.uuid4().hex}"
    server.app[BINDINGS][openid] = "c6001"
    try:
        assert await services.customer_of(wechat_tracker(openid)) == "c6001"
    finally:
        await services.identity_bindings().close()


async def test_an_unreachable_identity_service_leaves_the_shopper_anonymous(action_server):
    action_server({"ORDER_SYSTEM_BASE_URL": "http://127.0.0.1:1", "IDENTITY_BASE_URL": "http://127.0.0.1:1"})
    try:
        assert await services.customer_of(wechat_tracker("o-someone")) is None
    finally:
        await services.identity_bindings().close()


async def test_the_embedded_demo_binds_its_demo_customers_through_the_interface(action_server, monkeypatch):
    action_server({})
    monkeypatch.setattr(services, "_seed_done", False)
    assert await services.customer_of(wechat_tracker("oDemoOpenId0001")) == "c1001"
    assert await RedisIdentityBindings(services._redis()).customer_for_openid("oDemoOpenId0002") == "c1002"
