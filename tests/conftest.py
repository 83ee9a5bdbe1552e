"""Shared fixtures: a real Redis server (REDIS_URL, or the embedded redis-server)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Iterator, Optional, Tuple

import pytest
import redis as redis_lib

from bot.redis_server import EmbeddedRedis


def pytest_configure(config: pytest.Config) -> None:
    from tests.sanic_touchup import touch_up_once

    touch_up_once()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def embedded_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A private redis-server that a test may stop and restart."""
    server = EmbeddedRedis(free_port(), tmp_path / "redis").start()
    yield server
    server.stop()


def configured_or_embedded_redis(data_dir: Path) -> Tuple[str, Optional[EmbeddedRedis]]:
    """REDIS_URL when set (CI or a developer's server), else a started embedded server (to stop)."""
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"], None
    server = EmbeddedRedis(free_port(), data_dir).start()
    return server.url, server


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis for the session."""
    url, server = configured_or_embedded_redis(tmp_path_factory.mktemp("redis"))
    yield url
    if server is not None:
        server.stop()


@pytest.fixture
def redis_client(redis_url: str) -> redis_lib.Redis:
    return redis_lib.Redis.from_url(redis_url)
