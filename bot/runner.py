"""`make run`: Redis, the action server and the Rasa server, trained first if stale.

Ctrl-C stops every child in reverse start order (Rasa, actions, then Redis).
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

from bot.model import ensure_trained
from bot.paths import ROOT
from bot.redis_server import EmbeddedRedis
from bot.settings import Settings
from bot.stack import ManagedProcess, action_server, console_server, rasa_server, service_env

READY_TIMEOUT_S = 180


def persisted_secret(settings: Settings, configured: Optional[str], name: str) -> str:
    """The configured secret, or one generated once and kept (mode 600) in var/<name>."""
    if configured:
        return configured
    path = settings.var_dir / name
    if not path.exists():
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))  # hex: a leading "-" would read as a CLI option
        path.chmod(0o600)
    return path.read_text().strip()


def api_token(settings: Settings) -> str:
    """RASA_API_TOKEN, or a token generated once and kept in var/rasa_api_token."""
    return persisted_secret(settings, settings.rasa_api_token, "rasa_api_token")


def signing_secret(settings: Settings) -> str:
    """STORE_SIGNING_SECRET (shared with the store's backend), or a local one in var/."""
    return persisted_secret(settings, settings.store_signing_secret, "store_signing_secret")


def action_server_env(env: Dict[str, str]) -> Dict[str, str]:
    """The action server's environment. rasa_sdk listens on SANIC_HOST, all interfaces when it is
    unset; only Rasa calls it, and it has no authentication, so it stays on loopback."""
    return {**env, "SANIC_HOST": env.get("SANIC_HOST") or "127.0.0.1"}


def how_to_chat(settings: Settings, model: Path, redis_url: str) -> str:
    rel_model = model.relative_to(ROOT) if model.is_relative_to(ROOT) else model
    return f"""
小保 is ready.
  REST:      curl -s -XPOST http://127.0.0.1:{settings.rasa_port}/webhooks/rest/webhook \\
               -H 'Content-Type: application/json' -d '{{"sender":"me","message":"你好"}}'
  socket.io: http://127.0.0.1:{settings.rasa_port}/socket.io  (events user_uttered / bot_uttered)
  terminal:  REDIS_URL={redis_url} ACTION_ENDPOINT_URL={settings.action_endpoint_url} \\
               .venv/bin/rasa shell --model {rel_model} --endpoints endpoints.yml --port {settings.rasa_port + 1}
  console:   http://127.0.0.1:{settings.web_port}  (create an agent first:
               .venv/bin/python -m bot.console add-agent NAME)
  HTTP API:  token in {'RASA_API_TOKEN' if settings.rasa_api_token else settings.var_dir / 'rasa_api_token'}
  logged-in demo shopper: add "metadata": {{"customer_token": "<token>"}} to the REST body, with a
             token from `.venv/bin/python -m bot.identity c1001` (demo customers c1001, c1002)
Press Ctrl-C to stop.
"""


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    settings = Settings.from_env()
    try:
        settings.allowed_origins  # exact origins only, checked before anything starts
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    token = api_token(settings)
    started_at = time.monotonic()
    redis = None
    children: List[ManagedProcess] = []
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        if settings.redis_url:
            redis_url = settings.redis_url
            print("using Redis at REDIS_URL")
        else:
            redis = EmbeddedRedis(settings.embedded_redis_port, settings.var_dir / "redis").start()
            redis_url = redis.url
            print(f"started embedded Redis on 127.0.0.1:{redis.port} (data in {redis.data_dir})")
        model = ensure_trained(settings)
        # The knowledge base's sentence vectors, computed once and cached by fingerprint, so
        # the action server does not embed ~2,000 passages while Rasa waits for it.
        subprocess.run([sys.executable, "-m", "bot.knowledge", "embed"], cwd=ROOT, check=False)
        env = {**service_env(redis_url, settings.action_port), "STORE_SIGNING_SECRET": signing_secret(settings),
               "RASA_API_TOKEN": token, "RASA_URL": f"http://127.0.0.1:{settings.rasa_port}"}
        ready_from = time.monotonic()
        children.append(action_server(settings.action_port, action_server_env(env)).start())
        children.append(
            rasa_server(
                model, settings.rasa_port, token, env,
                bind_host=settings.bind_host, cors_origins=settings.cors_origins,
            ).start()
        )
        children.append(console_server(settings.web_port, env).start())
        for child in children:
            child.wait_ready(READY_TIMEOUT_S)
        print(how_to_chat(settings, model, redis_url))
        print(f"ready in {time.monotonic() - ready_from:.1f}s after start of servers "
              f"({time.monotonic() - started_at:.1f}s in all)", flush=True)
        while all(child.running() for child in children):
            time.sleep(0.5)
        stopped = next(child for child in children if not child.running())
        print(f"{stopped.name} exited unexpectedly; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping ...")
        return 0
    finally:
        for child in reversed(children):
            child.stop()
        if redis is not None:
            redis.stop()


if __name__ == "__main__":
    sys.exit(main())
