"""Shared fixtures of the risk tests: an async client of the real test Redis (tests/conftest.py)."""

from __future__ import annotations

import pytest

from bot.redis_url import async_redis


@pytest.fixture
async def redis(redis_url):
    client = async_redis(redis_url)
    yield client
    await client.close()
