"""Agent console commands.

  python -m bot.console serve                 run the console on WEB_PORT (make run does this)
  python -m bot.console add-agent NAME [--role supervisor] [--display 小王]
                                              create or reset an agent (--display: the
                                              name shoppers see, default the login; password from
                                              AGENT_PASSWORD, or asked for); works before the
                                              first `make run` too: without REDIS_URL and with
                                              no embedded Redis running, it starts that Redis
                                              (var/redis) for the moment it needs it
  python -m bot.console remove-agent NAME     delete an agent; their console sessions end at once
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import sys
from typing import Iterator, Optional, Tuple

from aiohttp import web

from bot.console.app import ConsoleConfig, create_app
from bot.privacy import install_log_masking
from bot.settings import Settings, api_token, console_session_key, parse_origins, redis_password


def embedded_redis_url(settings: Settings) -> str:
    return embedded_redis(settings).url


def embedded_redis(settings: Settings) -> "EmbeddedRedis":
    """The embedded Redis exactly as `make run` starts it: var/redis, with its password."""
    from bot.redis_server import EmbeddedRedis

    return EmbeddedRedis(settings.embedded_redis_port, settings.embedded_redis_dir, redis_password(settings))


def config_from_env(settings: Settings) -> ConsoleConfig:
    # The same secrets `make run` uses (bot.settings creates them), whichever of the two runs first.
    token = api_token(settings)
    session_key = console_session_key(settings)
    return ConsoleConfig(
        redis_url=settings.redis_url or embedded_redis_url(settings),
        rasa_url=os.environ.get("RASA_URL", f"http://127.0.0.1:{settings.rasa_port}"),
        rasa_token=token, session_key=session_key,
        secure_cookie=os.environ.get("CONSOLE_SECURE_COOKIE", "false").lower() == "true",
        rasa_public_url=os.environ.get("RASA_PUBLIC_URL", f"http://127.0.0.1:{settings.rasa_port}"),
        settings=settings, trusted_proxies=settings.trusted_proxies,
        allowed_origins=parse_origins(settings.console_origins.replace(",", " ")),
    )


@contextlib.contextmanager
def redis_for_setup(settings: Settings) -> Iterator[str]:
    """REDIS_URL; else the embedded Redis of `make run` if it is running; else that same Redis
    (same port and data directory) started for the duration, so the agent is there on the
    first `make run`."""
    if settings.redis_url:
        yield settings.redis_url
        return
    import redis

    from bot.redis_server import EmbeddedRedis

    url = embedded_redis_url(settings)
    try:
        running = redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        running = False
    if running:
        yield url
        return
    server = embedded_redis(settings).start()
    print(f"started the embedded Redis ({server.data_dir}) for this; `make run` uses the same data")
    try:
        yield server.url
    finally:
        server.stop()  # SIGTERM: redis writes its append-only file before it exits


async def remove_agent(settings: Settings, name: str, redis_url: str = "") -> bool:
    """Deletes the agent and ends their console sessions at once, on every replica."""
    from bot.console.agents import AgentStore
    from bot.redis_url import async_redis

    client = async_redis(redis_url or config_from_env(settings).redis_url)
    try:
        return await AgentStore(client).remove(name)
    finally:
        await client.aclose() if hasattr(client, "aclose") else await client.close()


async def add_agent(settings: Settings, name: str, password: str, redis_url: str = "", role: str = "agent",
                    display: Optional[str] = None) -> None:
    from bot.console.agents import AgentStore
    from bot.redis_url import async_redis

    config = config_from_env(settings)  # creates the shared secrets if this is the first command run
    client = async_redis(redis_url or config.redis_url)
    try:
        await AgentStore(client).add(name, password, role, display)
    finally:
        await client.aclose() if hasattr(client, "aclose") else await client.close()


def parse_add_agent(argv: list) -> Optional[Tuple[str, str, Optional[str]]]:
    """`add-agent NAME [--role ROLE] [--display NAME]` as (name, role, display); None otherwise."""
    if argv[:1] != ["add-agent"] or len(argv) < 2 or argv[1].startswith("--"):
        return None
    options, rest = {"--role": "agent", "--display": None}, argv[2:]
    while rest:
        if len(rest) < 2 or rest[0] not in options:
            return None
        options[rest[0]], rest = rest[1], rest[2:]
    return argv[1], options["--role"], options["--display"]


def main(argv: list) -> int:
    install_log_masking()
    settings = Settings.from_env()
    if argv[:1] == ["serve"]:
        web.run_app(create_app(config_from_env(settings)), host=settings.bind_host, port=settings.web_port,
                    print=lambda *_: print(f"agent console on http://{settings.bind_host}:{settings.web_port}", flush=True))
        return 0
    parsed = parse_add_agent(argv)
    if parsed is not None:
        from bot.console.agents import ROLES, check_display, check_new_agent

        name, role, display = parsed
        if role not in ROLES:
            print(f"a role is one of {', '.join(ROLES)}", file=sys.stderr)
            return 2
        try:
            display = check_display(display) if display is not None else None
        except ValueError as error:
            print(error, file=sys.stderr)
            return 2
        password = os.environ.get("AGENT_PASSWORD") or getpass.getpass(f"password for {name}: ")
        try:
            check_new_agent(name, password)
        except ValueError as error:
            print(error, file=sys.stderr)
            return 2
        with redis_for_setup(settings) as redis_url:
            asyncio.run(add_agent(settings, name, password, redis_url, role, display))
        print(f"agent {name} saved ({role}{', shown as ' + display if display else ''})")
        return 0
    if argv[:1] == ["remove-agent"] and len(argv) == 2:
        with redis_for_setup(settings) as redis_url:
            removed = asyncio.run(remove_agent(settings, argv[1], redis_url))
        print(f"agent {argv[1]} removed; their console sessions are ended" if removed else f"no agent {argv[1]}")
        return 0 if removed else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
