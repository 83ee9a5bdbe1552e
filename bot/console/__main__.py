"""Agent console commands.

  python -m bot.console serve                 run the console on WEB_PORT (make run does this)
  python -m bot.console add-agent NAME        create or reset an agent (password from
                                              AGENT_PASSWORD, or asked for)
"""

from __future__ import annotations

import asyncio
import getpass
import os
import sys

from aiohttp import web
from cryptography.fernet import Fernet

from bot.console.app import ConsoleConfig, create_app
from bot.privacy import install_log_masking
from bot.settings import Settings


def _secret_file(settings: Settings, name: str, make) -> bytes:
    path = settings.var_dir / name
    if not path.exists():
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make())
        path.chmod(0o600)
    return path.read_bytes().strip()


def config_from_env(settings: Settings) -> ConsoleConfig:
    token = settings.rasa_api_token or _secret_file(settings, "rasa_api_token", lambda: b"").decode()
    session_key = os.environ.get("CONSOLE_SESSION_KEY", "").encode() or _secret_file(
        settings, "console_session_key", Fernet.generate_key)
    return ConsoleConfig(
        redis_url=settings.redis_url or f"redis://127.0.0.1:{settings.embedded_redis_port}/0",
        rasa_url=os.environ.get("RASA_URL", f"http://127.0.0.1:{settings.rasa_port}"),
        rasa_token=token, session_key=session_key,
        secure_cookie=os.environ.get("CONSOLE_SECURE_COOKIE", "false").lower() == "true",
        rasa_public_url=os.environ.get("RASA_PUBLIC_URL", f"http://127.0.0.1:{settings.rasa_port}"),
        settings=settings,
    )


async def add_agent(settings: Settings, name: str, password: str) -> None:
    from bot.console.agents import AgentStore
    from bot.redis_url import async_redis

    client = async_redis(config_from_env(settings).redis_url)
    await AgentStore(client).add(name, password)
    await client.aclose() if hasattr(client, "aclose") else await client.close()


def main(argv: list) -> int:
    install_log_masking()
    settings = Settings.from_env()
    if argv[:1] == ["serve"]:
        web.run_app(create_app(config_from_env(settings)), host=settings.bind_host, port=settings.web_port,
                    print=lambda *_: print(f"agent console on http://{settings.bind_host}:{settings.web_port}", flush=True))
        return 0
    if argv[:1] == ["add-agent"] and len(argv) == 2:
        password = os.environ.get("AGENT_PASSWORD") or getpass.getpass(f"password for {argv[1]}: ")
        asyncio.run(add_agent(settings, argv[1], password))
        print(f"agent {argv[1]} saved")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
