"""REDIS_URL=redis+sentinel://...: the stores find the primary through Redis Sentinel and follow
it through a failover (real redis-server processes: a primary, a replica and a sentinel)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Iterator, List

import pytest
import redis

from bot.redis_server import EmbeddedRedis, redis_server_binary
from bot.redis_url import async_redis, parse_sentinel_url
from tests.conftest import free_port
from tests.stores.test_redis_stores import greeting, new_conversation, store as tracker_store


def test_sentinel_urls_are_parsed():
    assert parse_sentinel_url("redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26380/xiaobao/2") == (
        [("10.0.0.1", 26379), ("10.0.0.2", 26380)], "xiaobao", 2, "s3cret")
    assert parse_sentinel_url("redis+sentinel://sentinel/xiaobao") == ([("sentinel", 26379)], "xiaobao", 0, None)
    with pytest.raises(ValueError):
        parse_sentinel_url("redis+sentinel://sentinel")


def _wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except redis.RedisError:
            pass
        time.sleep(0.1)
    raise TimeoutError(what)


@pytest.fixture
def sentinel_deployment(tmp_path: Path) -> Iterator[dict]:
    primary = EmbeddedRedis(free_port(), tmp_path / "primary").start()
    replica_port, sentinel_port = free_port(), free_port()
    processes: List[subprocess.Popen] = []
    (tmp_path / "replica").mkdir()
    processes.append(subprocess.Popen(
        [redis_server_binary(), "--port", str(replica_port), "--bind", "127.0.0.1", "--dir", str(tmp_path / "replica"),
         "--replicaof", "127.0.0.1", str(primary.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    config = tmp_path / "sentinel.conf"
    config.write_text(f"port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\n"
                      f"sentinel monitor xiaobao 127.0.0.1 {primary.port} 1\n"
                      "sentinel down-after-milliseconds xiaobao 1000\n"
                      "sentinel failover-timeout xiaobao 5000\n")
    processes.append(subprocess.Popen([redis_server_binary(), str(config), "--sentinel"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    replica = redis.Redis(port=replica_port)
    _wait_for(lambda: replica.info("replication")["master_link_status"] == "up", 15, "replica never synced")
    sentinel = redis.Redis(port=sentinel_port)
    _wait_for(lambda: sentinel.execute_command("SENTINEL", "REPLICAS", "xiaobao"), 15, "sentinel never saw the replica")
    try:
        yield {"url": f"redis+sentinel://127.0.0.1:{sentinel_port}/xiaobao/0", "primary": primary,
               "replica_port": replica_port, "sentinel": sentinel}
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)
        primary.stop()


async def test_the_stores_follow_the_primary_through_a_failover(sentinel_deployment):
    url = sentinel_deployment["url"]
    sender = await new_conversation(url)  # written through the sentinel-discovered primary
    client = async_redis(url)
    assert (await client.info("server"))["tcp_port"] == sentinel_deployment["primary"].port
    redis.Redis(port=sentinel_deployment["primary"].port).wait(1, 2000)  # the replica has it

    sentinel_deployment["primary"].stop()  # the primary dies; the sentinel promotes the replica
    sentinel = sentinel_deployment["sentinel"]
    _wait_for(lambda: int(sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "xiaobao")[1])
              == sentinel_deployment["replica_port"], 30, "no failover")

    store = tracker_store(url)  # a fresh store: nothing of the old primary's connections
    deadline = time.monotonic() + 20
    while True:  # the replica may still be switching to read-write
        try:
            tracker = await store.retrieve(sender)
            for event in greeting("故障切换以后"):
                tracker.update(event)
            await store.save(tracker)
            break
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)
    full = await store.retrieve_full_tracker(sender)
    assert [e.text for e in full.events if e.as_dict()["event"] == "user"] == ["你好", "故障切换以后"]
    assert (await async_redis(url).info("server"))["tcp_port"] == sentinel_deployment["replica_port"]
    await client.close()

