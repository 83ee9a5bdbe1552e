"""A real stack for integration tests: redis-server, action server and Rasa server on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
import secrets
import time
import urllib.request
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set

import pytest
from rasa.shared.core.domain import Domain

from bot.model import ensure_trained
from bot.paths import ROOT
from bot.redis_server import EmbeddedRedis
from bot.settings import Settings
from bot.stack import ManagedProcess, action_server, rasa_server, service_env
from tests.conftest import configured_or_embedded_redis, free_port

READY_TIMEOUT_S = 240
HUMAN_PACE_S = 0.25
SIGNING_SECRET = "integration-test-signing-secret"
# 安全模式, as production should run: pushes are encrypted and signed with msg_signature.
WECHAT = {"WECHAT_TOKEN": "xiaobao-test-token", "WECHAT_APPID": "wxtestappid00001", "WECHAT_SECRET": "wechat-secret",
          "WECHAT_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "WECHAT_ORIGINAL_ID": "gh_test"}


@dataclass
class Stack:
    redis_url: str
    redis: Optional[EmbeddedRedis]
    model: Path
    log_dir: Path
    rasa_port: int = field(default_factory=free_port)
    action_port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_hex(16))  # never starts with "-"
    web_port: int = field(default_factory=free_port)  # the web app's, whose pages may use socket.io
    actions: Optional[ManagedProcess] = None
    rasa: Optional[ManagedProcess] = None
    wechat: Any = None  # the fake WeChat API (tests.channels.fake_wechat.FakeWeChat)
    wechat_url: str = ""
    last_sent: Dict[str, float] = field(default_factory=dict)

    def env(self) -> Dict[str, str]:
        return {**service_env(self.redis_url, self.action_port), "STORE_SIGNING_SECRET": SIGNING_SECRET,
                "CORS_ORIGINS": f"http://127.0.0.1:{self.web_port} http://localhost:{self.web_port}",
                **WECHAT, "WECHAT_API_BASE": self.wechat_url,
                # Every test shopper's REST messages come from 127.0.0.1: the per-IP ticket limit
                # (10 an hour) would refuse the suite's later handoffs. tests/test_attack_ticket_flood.py
                # tests that limit.
                "TICKETS_PER_IP_PER_HOUR": "10000"}

    def start_actions(self) -> None:
        log = open(self.log_dir / "actions.log", "ab")
        self.actions = action_server(self.action_port, self.env(), output=log).start()
        self.actions.wait_ready(READY_TIMEOUT_S)

    def start_rasa(self) -> None:
        log = open(self.log_dir / "rasa.log", "ab")
        # DEBUG: Rasa then logs every message it parses, which the log-masking test relies on.
        env = {**self.env(), "LOG_LEVEL": "DEBUG"}
        self.rasa = rasa_server(self.model, self.rasa_port, self.token, env, output=log).start()
        self.rasa.wait_ready(READY_TIMEOUT_S)

    def restart_rasa(self) -> None:
        self.rasa.stop()
        self.start_rasa()

    def stop(self) -> None:
        for process in (self.rasa, self.actions):
            if process is not None:
                process.stop()

    def send(self, sender: str, text: Any, timeout: float = 60, metadata: Optional[dict] = None) -> List[Dict[str, Any]]:
        """POSTs to the REST webhook; returns the bot's messages (HTTP errors raise).

        Test shoppers type like people: at most one message every HUMAN_PACE_S per sender, since
        the server limits each sender to SENDER_MAX_PER_SECOND (5) messages a second.
        """
        wait = self.last_sent.get(sender, 0.0) + HUMAN_PACE_S - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self.last_sent[sender] = time.monotonic()
        body = {"sender": sender, "message": text, **({"metadata": metadata} if metadata else {})}
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.rasa_port}/webhooks/rest/webhook",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            assert response.status == 200
            return json.loads(response.read())

    def api(self, path: str, token: Optional[str] = None) -> Any:
        url = f"http://127.0.0.1:{self.rasa_port}{path}"
        if token:
            url += ("&" if "?" in url else "?") + f"token={token}"
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.loads(response.read())


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    log_dir = tmp_path_factory.mktemp("stack-logs")
    redis_url, redis = configured_or_embedded_redis(tmp_path_factory.mktemp("stack-redis"))
    from tests.channels.fake_wechat import FakeWeChat

    model = ensure_trained(Settings.from_env())
    wechat = FakeWeChat()
    stack = Stack(redis_url=redis_url, redis=redis, model=model, log_dir=log_dir, wechat=wechat,
                  wechat_url=wechat.start_in_thread())
    try:
        stack.start_actions()
        stack.start_rasa()
        yield stack
    finally:
        stack.stop()
        if redis is not None:
            redis.stop()
        for log in log_dir.glob("*.log"):  # kept next to the test output for diagnosis
            print(f"--- {log.name} (tail) ---\n{log.read_text(errors='replace')[-3000:]}")


@lru_cache(maxsize=1)
def _domain() -> Domain:
    return Domain.load(str(ROOT / "domain"))


def response_texts(name: str) -> Set[str]:
    """Every variation of a domain response, with slots left as placeholders."""
    return {variation["text"] for variation in _domain().responses[name]}


def all_response_texts() -> Set[str]:
    """Every text the domain can say (responses without slot placeholders)."""
    return {text for name in _domain().responses for text in response_texts(name)}


def matches_response(message_text: str, name: str, **slots: str) -> bool:
    return message_text in {text.format(**slots) for text in response_texts(name)}


@asynccontextmanager
async def socket_session(stack: Stack, token: str = None):
    """A socket.io client, like the widget: it asks for a session (resuming the signed `token` if
    given) and talks in the one the server issues. Yields the client, a queue of the bot's replies,
    the issued signed session (to send as `session_id`) and its conversation id (`web:<session>`)."""
    import socketio

    from bot.webchat.conversation_ids import web_conversation

    client = socketio.AsyncClient(reconnection=False)
    replies: "asyncio.Queue[dict]" = asyncio.Queue()
    confirmed: "asyncio.Queue[str]" = asyncio.Queue()
    client.on("bot_uttered", replies.put)
    client.on("session_confirm", confirmed.put)
    await client.connect(f"http://127.0.0.1:{stack.rasa_port}", transports=["websocket"], socketio_path="/socket.io")
    try:
        await client.emit("session_request", {"session_id": token})
        issued = await asyncio.wait_for(confirmed.get(), timeout=10)
        yield client, replies, issued, web_conversation(issued.split(".")[0])
    finally:
        await client.disconnect()


async def stored_open_ticket(redis_url: str, sender: str = None, ticket_id: str = None):
    """The conversation's open ticket, or a ticket by id, read straight from Redis."""
    import redis.asyncio as aioredis

    from bot.handoff.tickets import TicketStore

    client = aioredis.Redis.from_url(redis_url)
    try:
        store = TicketStore(client)
        return await (store.get(ticket_id) if ticket_id else store.open_ticket_for(sender))
    finally:
        await client.close()


AGENT_PASSWORD = "agent password 123"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                    reason="Debian's chromium is not installed (make test installs it)")


@pytest.fixture
def console(stack, tmp_path):
    """The web app (agent console and web chat) against the stack, with one agent."""
    from bot.console.agents import AgentStore
    from bot.stack import console_server

    port = stack.web_port
    env = {**stack.env(), "RASA_URL": f"http://127.0.0.1:{stack.rasa_port}", "RASA_API_TOKEN": stack.token,
           "RASA_PUBLIC_URL": f"http://127.0.0.1:{stack.rasa_port}", "XIAOBAO_VAR_DIR": str(tmp_path),
           "BIND_HOST": "127.0.0.1"}
    process = console_server(port, env, output=open(tmp_path / "console.log", "ab")).start()
    process.wait_ready(60)
    agent = f"agent{uuid.uuid4().hex[:6]}"
    password = AGENT_PASSWORD

    async def add():
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(stack.redis_url)
        await AgentStore(client).add(agent, password)
        await client.close()

    asyncio.run(add())
    yield f"http://127.0.0.1:{port}", agent
    process.stop()




@pytest.fixture
def demo(monkeypatch):
    """The storefront signs the demo customer's token only in a demo (DEMO=1, as `make run` sets);
    request it before `console`, which reads the environment when it starts the web app."""
    monkeypatch.setenv("DEMO", "1")


@pytest.fixture
async def browser():
    """Debian's chromium, headless, driven by Playwright (async tests)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()
