"""Setup in the README's order: `add-agent` before the first `make run` (issue 12).

The secrets (Rasa API token, store signing secret, console session key) are created in one place,
bot.settings, which `add-agent`, the console and `make run`'s runner all use, in whatever order.
"""

from __future__ import annotations

import os
import subprocess
import sys

import redis.asyncio as aioredis

from bot import runner
from bot.console.__main__ import config_from_env
from bot.console.agents import AgentStore
from bot.paths import ROOT
from bot.redis_server import EmbeddedRedis
from bot.settings import Settings, api_token, console_session_key, signing_secret
from tests.conftest import free_port

PASSWORD = "correct horse battery"


def private(path) -> bool:
    return path.stat().st_mode & 0o077 == 0


def test_the_console_first_then_the_runner_use_one_token(tmp_path, monkeypatch):
    monkeypatch.delenv("CONSOLE_SESSION_KEY", raising=False)
    settings = Settings.from_env({"XIAOBAO_VAR_DIR": str(tmp_path)})
    config = config_from_env(settings)  # what `add-agent` does first
    assert len(config.rasa_token) >= 32
    assert runner.api_token(settings) == config.rasa_token  # what `make run` passes to Rasa
    assert private(tmp_path / "rasa_api_token") and private(tmp_path / "console_session_key")
    assert config_from_env(settings).session_key == config.session_key


def test_an_empty_token_left_by_an_older_add_agent_is_replaced(tmp_path):
    (tmp_path / "rasa_api_token").write_text("")
    settings = Settings.from_env({"XIAOBAO_VAR_DIR": str(tmp_path)})
    token = runner.api_token(settings)
    assert len(token) >= 32 and api_token(settings) == token
    assert (tmp_path / "rasa_api_token").read_text().strip() == token


def test_processes_starting_together_agree_on_every_secret(tmp_path):
    code = ("from bot.settings import *; s = Settings.from_env({'XIAOBAO_VAR_DIR': %r}); "
            "print(api_token(s), signing_secret(s), console_session_key(s, '').decode())" % str(tmp_path))
    env = {k: v for k, v in os.environ.items() if k not in ("RASA_API_TOKEN", "STORE_SIGNING_SECRET")}
    started = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
               for _ in range(8)]
    answers = {process.communicate(timeout=60)[0] for process in started}
    assert len(answers) == 1, answers
    settings = Settings.from_env({"XIAOBAO_VAR_DIR": str(tmp_path)})
    assert answers == {f"{api_token(settings)} {signing_secret(settings)} {console_session_key(settings, '').decode()}\n"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["console_session_key", "rasa_api_token",
                                                          "store_signing_secret"]  # nothing left aside


async def test_add_agent_before_the_first_make_run(tmp_path):
    """No Redis is running yet: add-agent starts the embedded one on its own data, saves the agent
    and stops it; `make run` then finds the agent and uses the token add-agent created."""
    port = free_port()
    env = {**os.environ, "XIAOBAO_VAR_DIR": str(tmp_path), "EMBEDDED_REDIS_PORT": str(port),
           "AGENT_PASSWORD": PASSWORD}
    for name in ("REDIS_URL", "RASA_API_TOKEN", "CONSOLE_SESSION_KEY"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-m", "bot.console", "add-agent", "alice"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "agent alice saved" in done.stdout

    settings = Settings.from_env({"XIAOBAO_VAR_DIR": str(tmp_path), "EMBEDDED_REDIS_PORT": str(port)})
    token = (tmp_path / "rasa_api_token").read_text().strip()
    assert len(token) >= 32 and runner.api_token(settings) == token
    # As `make run` starts it: same port, same data directory.
    server = EmbeddedRedis(settings.embedded_redis_port, settings.embedded_redis_dir).start()
    client = aioredis.Redis.from_url(server.url)
    try:
        assert await AgentStore(client).verify("alice", PASSWORD)
    finally:
        await client.close()
        server.stop()


def test_add_agent_refuses_a_short_password_before_starting_anything(tmp_path):
    env = {**os.environ, "XIAOBAO_VAR_DIR": str(tmp_path), "EMBEDDED_REDIS_PORT": str(free_port()),
           "AGENT_PASSWORD": "short"}
    env.pop("REDIS_URL", None)
    done = subprocess.run([sys.executable, "-m", "bot.console", "add-agent", "bob"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "at least 8 characters" in done.stderr
    assert not (tmp_path / "redis").exists()
