"""Scale-out: two Rasa replicas and two action servers behind Debian's nginx, sharing one Redis.

* Messages for the same conversations go to both replicas at once; the conversations come out
  whole: every message once, in order, each turn finished before the next began.
* One replica is killed; the conversations go on through the other.
* A shopper's socket on one replica receives messages that another replica sends.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import aiohttp
import pytest
import socketio

from bot.channels.polite import system_message
from bot.model import ensure_trained
from bot.rasa_api import RasaApi
from bot.settings import Settings
from bot.stack import ManagedProcess, action_server, rasa_server, service_env
from tests.conftest import configured_or_embedded_redis, free_port
from tests.integration.conftest import READY_TIMEOUT_S, SIGNING_SECRET, WECHAT, matches_response

pytestmark = pytest.mark.integration

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
needs_nginx = pytest.mark.skipif(not os.path.exists(NGINX), reason="Debian's nginx is not installed (make test installs it)")
TOKEN = "scale-out-token"


@dataclass
class Replica:
    port: int
    rasa: ManagedProcess
    actions: ManagedProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Cluster:
    redis_url: str
    replicas: List[Replica]
    lb_port: int
    nginx: subprocess.Popen
    logs: Path
    extra: Dict[str, str] = field(default_factory=dict)

    @property
    def lb_url(self) -> str:
        return f"http://127.0.0.1:{self.lb_port}"


def _nginx_config(directory: Path, port: int, upstreams: List[int]) -> Path:
    servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;" for p in upstreams)
    user = "user root;" if os.geteuid() == 0 else ""
    config = directory / "nginx.conf"
    config.write_text(f"""
{user}
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log {directory}/nginx-access.log;
  client_body_temp_path {directory}/body;
  proxy_temp_path {directory}/proxy;
  fastcgi_temp_path {directory}/fastcgi;
  uwsgi_temp_path {directory}/uwsgi;
  scgi_temp_path {directory}/scgi;
  upstream rasa {{
{servers}
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://rasa;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 120s;
      # A replica that refuses connections is skipped (the request was never sent to it).
      proxy_next_upstream error timeout;
    }}
  }}
}}
""")
    return config


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    logs = tmp_path_factory.mktemp("scaleout")
    redis_url, redis = configured_or_embedded_redis(logs / "redis")
    model = ensure_trained(Settings.from_env())
    replicas: List[Replica] = []
    nginx: Optional[subprocess.Popen] = None
    try:
        for index in range(2):
            action_port, rasa_port = free_port(), free_port()
            # The per-sender flood limit is tested elsewhere; here it would only blur the contention.
            env = {**service_env(redis_url, action_port), "STORE_SIGNING_SECRET": SIGNING_SECRET, **WECHAT,
                   "SENDER_MAX_PER_SECOND": "0"}
            actions = action_server(action_port, env, output=open(logs / f"actions-{index}.log", "ab")).start()
            rasa = rasa_server(model, rasa_port, TOKEN, env, output=open(logs / f"rasa-{index}.log", "ab")).start()
            replicas.append(Replica(rasa_port, rasa, actions))
        for replica in replicas:
            replica.actions.wait_ready(READY_TIMEOUT_S)
            replica.rasa.wait_ready(READY_TIMEOUT_S)
        lb_port = free_port()
        config = _nginx_config(logs, lb_port, [r.port for r in replicas])
        nginx = subprocess.Popen([NGINX, "-p", str(logs), "-c", str(config), "-g", "daemon off;"],
                                 stdout=subprocess.DEVNULL, stderr=open(logs / "nginx.out", "ab"), start_new_session=True)
        _wait_http(f"http://127.0.0.1:{lb_port}/", 20)
        yield Cluster(redis_url, replicas, lb_port, nginx, logs)
    finally:
        if nginx is not None:
            os.killpg(nginx.pid, signal.SIGTERM)
            nginx.wait(10)
        for replica in replicas:
            replica.rasa.stop()
            replica.actions.stop()
        if redis is not None:
            redis.stop()
        for log in sorted(logs.glob("*.log")):
            print(f"--- {log.name} (tail) ---\n{log.read_text(errors='replace')[-2000:]}")


def _wait_http(url: str, timeout_s: float) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # nginx answered
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise TimeoutError(f"{url} not answering after {timeout_s}s")


async def say(session: aiohttp.ClientSession, base_url: str, sender: str, text: str) -> List[dict]:
    async with session.post(f"{base_url}/webhooks/rest/webhook", json={"sender": sender, "message": text}) as response:
        assert response.status == 200, await response.text()
        return await response.json()


def texts(replies: List[dict]) -> List[str]:
    return [reply.get("text", "") for reply in replies]


async def user_turns(base_url: str, sender: str) -> List[List[dict]]:
    """The conversation's events, split into turns that each begin with a user message."""
    api = RasaApi(base_url, TOKEN)
    try:
        events = (await api.tracker(sender))["events"]
    finally:
        await api.close()
    turns: List[List[dict]] = []
    for event in events:
        if event["event"] == "user":
            turns.append([event])
        elif turns:
            turns[-1].append(event)
    return turns


# Nothing here accepts an offer (「好的」 after 「需要我为您转接人工客服吗？」 would rightly hand the
# conversation to a person, and a paused conversation is silent by design).
QUESTIONS = ["你好", "七天无理由退货从哪天开始算", "买到假货能退一赔三吗", "谢谢", "三包期内手机坏了怎么办",
             "网购时个人信息保护有哪些规定", "你好呀", "再见"]


@needs_nginx
async def test_interleaved_messages_to_both_replicas_lose_and_reorder_nothing(cluster):
    """Each round sends two messages of one conversation at the same moment, one to each replica,
    for eight conversations at once; the lock must make the two turns take turns."""
    a, b = cluster.replicas
    senders = [f"scale-{uuid.uuid4().hex[:10]}" for _ in range(8)]
    rounds = 4
    apology = system_message("turn_failed")

    async def conversation(session: aiohttp.ClientSession, sender: str) -> List[List[str]]:
        sent_per_round = []
        for round_ in range(rounds):
            first, second = f"{QUESTIONS[2 * round_ % 8]}（{round_}a）", f"{QUESTIONS[(2 * round_ + 1) % 8]}（{round_}b）"
            replies = await asyncio.gather(say(session, a.url, sender, first), say(session, b.url, sender, second))
            for text, reply in zip((first, second), replies):
                if not reply or apology in texts(reply):
                    story = [(e["event"], e.get("name") or e.get("text")) for turn in await user_turns(a.url, sender)
                             for e in turn if e["event"] in ("user", "bot", "action", "pause")]
                    pytest.fail(f"{sender}: {text!r} got {reply!r} (silent, or a lock/fencing conflict); the story ends {story[-14:]}")
            sent_per_round.append([first, second])
        return sent_per_round

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=180)) as session:
        sent = await asyncio.gather(*(conversation(session, sender) for sender in senders))

    for sender, rounds_sent in zip(senders, sent):
        turns = await user_turns(cluster.lb_url, sender)
        received = [turn[0]["text"] for turn in turns]
        # every message exactly once ...
        assert sorted(received) == sorted(text for pair in rounds_sent for text in pair), sender
        # ... in order (the two of a round may come in either order) ...
        for round_, pair in enumerate(rounds_sent):
            assert set(received[2 * round_: 2 * round_ + 2]) == set(pair), (sender, received)
        # ... and each turn finished (the bot answered and listened) before the next began.
        for turn in turns:
            bot_events = [e for e in turn if e["event"] == "bot"]
            assert bot_events, (sender, turn[0]["text"], "no bot message inside the turn")
            assert turn[-1]["event"] == "action" and turn[-1]["name"] == "action_listen", (sender, turn[-1])


@needs_nginx
async def test_conversations_go_on_through_the_other_replica_when_one_is_killed(cluster):
    senders = [f"failover-{uuid.uuid4().hex[:10]}" for _ in range(4)]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        for sender in senders:  # through nginx: round robin spreads them over both replicas
            assert await say(session, cluster.lb_url, sender, "你好")
            assert await say(session, cluster.lb_url, sender, "七天无理由退货从哪天开始算")
        victim = cluster.replicas[0]
        os.killpg(victim.rasa.process.pid, signal.SIGKILL)
        victim.rasa.process.wait(10)
        for sender in senders:
            for text in ("买到假货能退一赔三吗", "谢谢"):
                replies = await say(session, cluster.lb_url, sender, text)
                assert replies and system_message("turn_failed") not in texts(replies), (sender, text, replies)
    for sender in senders:
        turns = await user_turns(cluster.replicas[1].url, sender)
        assert [t[0]["text"] for t in turns] == ["你好", "七天无理由退货从哪天开始算", "买到假货能退一赔三吗", "谢谢"]


@needs_nginx
async def test_a_socket_on_one_replica_gets_messages_sent_by_another(cluster):
    alive = [r for r in cluster.replicas if r.rasa.running()]
    if len(alive) < 2:  # the fail-over test killed one: start it again on the same port
        dead = next(r for r in cluster.replicas if not r.rasa.running())
        dead.rasa.start()
        dead.rasa.wait_ready(READY_TIMEOUT_S)
    socket_replica, other = cluster.replicas
    client = socketio.AsyncClient(reconnection=False)
    received: "asyncio.Queue[dict]" = asyncio.Queue()
    confirmed: "asyncio.Queue[str]" = asyncio.Queue()
    client.on("bot_uttered", received.put)
    client.on("session_confirm", confirmed.put)
    await client.connect(socket_replica.url, transports=["websocket"], socketio_path="/socket.io")
    other_api = RasaApi(other.url, TOKEN)
    try:
        await client.emit("session_request", {"session_id": None})
        token = await asyncio.wait_for(confirmed.get(), timeout=10)  # the signed session the server issues
        session_id = "web:" + token.split(".")[0]  # the conversation, in the web chat's namespace
        await client.emit("user_uttered", {"message": "你好", "session_id": token})
        await asyncio.wait_for(received.get(), timeout=30)  # the greeting, from the socket's own replica
        while not received.empty():
            received.get_nowait()
        # An agent's reply, as the console sends it, through the *other* replica's HTTP API.
        await other_api.send_bot_message(session_id, "您好，我是客服小李，这就帮您处理。")
        message = await asyncio.wait_for(received.get(), timeout=15)
        assert message["text"] == "您好，我是客服小李，这就帮您处理。"
        # A bot reply the other replica produces (as for the console's SLA notices) arrives too.
        await other_api.trigger_intent(session_id, "greet")
        message = await asyncio.wait_for(received.get(), timeout=15)
        assert matches_response(message["text"], "utter_greet")
    finally:
        await other_api.close()
        await client.disconnect()
