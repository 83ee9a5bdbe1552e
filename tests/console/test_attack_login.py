"""Attacks on the console's login (issue 13, finding "console-login-stall"), through aiohttp's test
client against the real console app and a real Redis. Each test passes only when the attack fails.

- Argon2 must not run on the event loop: while wrong logins are being checked, other requests of
  the same web app (the console, and the shoppers' web chat it serves) are still answered at once.
- Tries are counted before they are verified, atomically: parallel tries for one name get no more
  verifications than the limit allows.
- The limit is not per (IP, name): rotating the name from one IP is throttled too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
import time
import uuid

import argon2
import pytest
from cryptography.fernet import Fernet

from bot.console.app import SERVICES, ConsoleConfig, create_app
from tests.console.test_console import RASA_TOKEN, FakeRasa

PASSWORD = "correct horse battery"
FINDING = "console-login-stall"


def console_config(redis_url: str, rasa_url: str) -> ConsoleConfig:
    fields = {f.name for f in dataclasses.fields(ConsoleConfig)}
    # The login limits of each test in their own Redis keys, so that tests don't throttle each other.
    extra = {"login_throttle_prefix": f"test:login:{uuid.uuid4().hex}:"} if "login_throttle_prefix" in fields else {}
    return ConsoleConfig(redis_url=redis_url, rasa_url=rasa_url, rasa_token=RASA_TOKEN,
                         session_key=Fernet.generate_key(), poll_interval_s=0.05, sla_interval_s=3600, **extra)


@pytest.fixture
async def console(redis_url, aiohttp_server, aiohttp_client):
    rasa_server = await aiohttp_server(FakeRasa().app())
    app = create_app(console_config(redis_url, str(rasa_server.make_url(""))))
    client = await aiohttp_client(app)
    name = f"agent{uuid.uuid4().hex[:8]}"
    await app[SERVICES].agents.add(name, PASSWORD)
    return client, name


@pytest.fixture
def argon2_calls(monkeypatch):
    """Counts Argon2 verifications (and hashes: the old code hashed for unknown names)."""
    calls, lock = [], threading.Lock()
    real_verify, real_hash = argon2.PasswordHasher.verify, argon2.PasswordHasher.hash

    def verify(self, hash, password):
        with lock:
            calls.append("verify")
        return real_verify(self, hash, password)

    def hash_(self, password, *args, **kwargs):
        with lock:
            calls.append("hash")
        return real_hash(self, password, *args, **kwargs)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", verify)
    monkeypatch.setattr(argon2.PasswordHasher, "hash", hash_)
    return calls


async def login_csrf(client) -> str:
    page = await client.get("/login")
    return re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)


async def try_login(client, csrf: str, name: str, password: str) -> int:
    response = await client.post("/login", data={"name": name, "password": password, "csrf": csrf},
                                 allow_redirects=False)
    await response.read()
    if response.status == 302:
        return 200 if response.headers["Location"] == "/" else 401
    return response.status


@pytest.mark.attack(FINDING)
async def test_parallel_wrong_logins_do_not_stall_other_requests(console):
    client, name = console
    csrf = await login_csrf(client)
    names = [name if i % 2 else f"nobody{uuid.uuid4().hex[:6]}" for i in range(20)]  # unknown names too
    tries = [asyncio.create_task(try_login(client, csrf, n, "wrong password!")) for n in names]
    await asyncio.sleep(0.05)  # the tries are under way
    slowest = 0.0
    for _ in range(5):
        started = time.perf_counter()
        response = await client.get("/static/console.js")
        await response.read()
        assert response.status == 200
        slowest = max(slowest, time.perf_counter() - started)
        await asyncio.sleep(0.02)
    statuses = await asyncio.gather(*tries)
    assert 200 not in statuses
    # One Argon2 run takes 250-400 ms: a request waiting for even one of them on the loop is caught.
    assert slowest < 0.2, f"a static file took {slowest * 1000:.0f} ms while logins were checked"


@pytest.mark.attack(FINDING)
async def test_parallel_tries_for_one_name_cannot_slip_past_the_limit(console, argon2_calls):
    from bot.console.agents import MAX_FAILED_LOGINS

    client, name = console
    csrf = await login_csrf(client)
    argon2_calls.clear()
    statuses = await asyncio.gather(*(try_login(client, csrf, name, f"guess {i}") for i in range(20)))
    assert 200 not in statuses
    assert len(argon2_calls) <= MAX_FAILED_LOGINS, f"{len(argon2_calls)} passwords checked for one name"
    assert statuses.count(429) >= 20 - MAX_FAILED_LOGINS
    # the name is locked now, even for the right password
    assert await try_login(client, csrf, name, PASSWORD) == 429


@pytest.mark.attack(FINDING)
async def test_rotating_names_from_one_ip_is_throttled(console, argon2_calls):
    client, name = console
    csrf = await login_csrf(client)
    argon2_calls.clear()
    statuses = []
    for i in range(30):  # a different name for every try: a known one, and names guessed
        guessed = name if i == 0 else f"{name}{i}" if i % 2 else f"guess{uuid.uuid4().hex[:6]}"
        statuses.append(await try_login(client, csrf, guessed, "Password1!"))
        if statuses[-1] == 429:
            break
    assert 200 not in statuses
    assert statuses[-1] == 429, f"{len(statuses)} tries with rotating names and no throttling"
    assert len(statuses) <= 11
    assert len(argon2_calls) <= 10
    # and then the IP is refused for any name, before anything is verified
    before = len(argon2_calls)
    assert await try_login(client, csrf, f"other{uuid.uuid4().hex[:6]}", "Password1!") == 429
    assert len(argon2_calls) == before
