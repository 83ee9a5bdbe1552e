"""Shared fixtures: a real Redis server (REDIS_URL, or the embedded redis-server)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Iterator

import pytest
import redis as redis_lib

from bot.redis_server import EmbeddedRedis


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


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """REDIS_URL when set (CI or a developer's server), else an embedded server for the session."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = EmbeddedRedis(free_port(), tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


@pytest.fixture
def redis_client(redis_url: str) -> redis_lib.Redis:
    return redis_lib.Redis.from_url(redis_url)
