"""Attacks on console sessions (issue 13, finding "console-sessions"), through aiohttp's test client
against the real console app and a real Redis. Each test passes only when the attack fails.

- A removed agent's session cookie stops working at once (sessions live in Redis and are ended).
- A page of another site cannot open the console's WebSocket with the agent's cookie.
- Behind a trusted TLS-terminating proxy the session cookie is Secure; X-Forwarded-Proto sent
  by anyone else is ignored (it cannot make us believe what we are not told by our proxy).
"""

from __future__ import annotations

import dataclasses
import re
import uuid

import aiohttp
import pytest
from cryptography.fernet import Fernet

from bot.console.app import SERVICES, ConsoleConfig, create_app
from tests.console.test_console import RASA_TOKEN, FakeRasa

PASSWORD = "correct horse battery"
FINDING = "console-sessions"


def console_config(redis_url: str, rasa_url: str, **wanted) -> ConsoleConfig:
    fields = {f.name for f in dataclasses.fields(ConsoleConfig)}
    extra = {"login_throttle_prefix": f"test:login:{uuid.uuid4().hex}:", **wanted}
    return ConsoleConfig(redis_url=redis_url, rasa_url=rasa_url, rasa_token=RASA_TOKEN,
                         session_key=Fernet.generate_key(), poll_interval_s=0.05, sla_interval_s=3600,
                         **{k: v for k, v in extra.items() if k in fields})


@pytest.fixture
async def make_console(redis_url, aiohttp_server, aiohttp_client):
    async def make(**wanted):
        rasa_server = await aiohttp_server(FakeRasa().app())
        app = create_app(console_config(redis_url, str(rasa_server.make_url("")), **wanted))
        client = await aiohttp_client(app)
        name = f"agent{uuid.uuid4().hex[:8]}"
        await app[SERVICES].agents.add(name, PASSWORD)
        return app, client, name

    return make


async def login(client, name, headers=None):
    page = await client.get("/login", headers=headers)
    csrf = re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)
    headers = dict(headers or {})
    if "xb_login" in page.cookies and page.cookies["xb_login"]["secure"]:
        # a Secure cookie: the test client, on http, would not send it back; a browser on https does
        headers["Cookie"] = f"xb_login={page.cookies['xb_login'].value}"
    response = await client.post("/login", data={"name": name, "password": PASSWORD, "csrf": csrf},
                                 headers=headers, allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/", "the agent could not log in"
    return response


async def remove_agent(app, name) -> None:
    """What `python -m bot.console remove-agent NAME` does (the old code had no such command:
    deleting the agent's record was all there was)."""
    agents = app[SERVICES].agents
    if hasattr(agents, "remove"):
        await agents.remove(name)
    else:
        await agents._redis.hdel(agents._prefix + "agents", name)


@pytest.mark.attack(FINDING)
async def test_a_removed_agents_session_stops_working(make_console):
    app, client, name = await make_console()
    await login(client, name)
    assert (await client.get("/api/queue")).status == 200
    stolen = {c.key: c.value for c in client.session.cookie_jar}  # e.g. kept by the removed agent
    await remove_agent(app, name)
    assert (await client.get("/api/queue")).status == 401
    # the same cookie replayed from another browser does not work either
    other = aiohttp.ClientSession(cookies=stolen)
    try:
        async with other.get(client.make_url("/api/queue")) as response:
            assert response.status == 401
        async with other.get(client.make_url("/"), allow_redirects=False) as response:
            assert response.headers.get("Location") == "/login"
    finally:
        await other.close()


@pytest.mark.attack(FINDING)
async def test_a_removed_agents_session_is_gone_from_redis(make_console, redis_url):
    """The session is ended where it lives, not only refused: re-adding an agent of the same name
    does not bring the old cookie back to life."""
    app, client, name = await make_console()
    await login(client, name)
    await remove_agent(app, name)
    await app[SERVICES].agents.add(name, "another long password")
    assert (await client.get("/api/queue")).status == 401


@pytest.mark.attack(FINDING)
async def test_cross_origin_websocket_is_refused(make_console):
    app, client, name = await make_console()
    await login(client, name)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws", headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
    # the console's own page still connects
    own = f"http://{client.host}:{client.port}"
    ws = await client.ws_connect("/ws", headers={"Origin": own})
    await ws.close()


@pytest.mark.attack(FINDING)
async def test_cookie_is_secure_behind_a_trusted_https_proxy(make_console):
    app, client, name = await make_console(trusted_proxies=("127.0.0.1",))
    response = await login(client, name, headers={"X-Forwarded-Proto": "https"})
    cookie = response.cookies["xb_console"]
    assert cookie.value and cookie["secure"], "the session cookie is not Secure over HTTPS"
    assert cookie["httponly"] and cookie["samesite"] == "Strict"


@pytest.mark.attack(FINDING)
async def test_forwarded_proto_from_an_untrusted_client_is_ignored(make_console):
    app, client, name = await make_console(trusted_proxies=("10.9.9.9",))  # not the test client
    response = await login(client, name, headers={"X-Forwarded-Proto": "https", "Origin": "https://x"})
    assert not response.cookies["xb_console"]["secure"]
    # nor can it make a cross-origin https page look like the console's own to /ws
    own_host = f"{client.host}:{client.port}"
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await client.ws_connect("/ws", headers={"Origin": f"https://{own_host}", "X-Forwarded-Proto": "https"})
