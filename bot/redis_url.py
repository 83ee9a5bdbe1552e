"""One way to connect to Redis from a URL, for every part of the assistant.

`REDIS_URL` may name a single server or a Redis Sentinel deployment:

* `redis://[:password@]host:port/db` (or `rediss://` for TLS): one server;
* `redis+sentinel://[:password@]host1:port1,host2:port2/service_name/db`: ask the sentinels
  where the primary of `service_name` is, and follow it through a failover. The password is the
  data servers'; sentinels are reached without one unless `REDIS_SENTINEL_PASSWORD` is set.
"""

from __future__ import annotations

import os
from typing import Any, List, Tuple
from urllib.parse import unquote, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

SENTINEL_SCHEME = "redis+sentinel"


def parse_sentinel_url(url: str) -> Tuple[List[Tuple[str, int]], str, int, Any]:
    """(sentinels, service name, db, password) of a `redis+sentinel://` URL."""
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        raise ValueError(f"not a {SENTINEL_SCHEME}:// URL")
    hosts = parts.netloc.rsplit("@", 1)[-1]
    password = unquote(parts.password) if parts.password else None
    sentinels = []
    for host in hosts.split(","):
        name, _, port = host.rpartition(":")
        sentinels.append((name or host, int(port) if name else 26379))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ValueError(f"{SENTINEL_SCHEME}:// URL needs a service name: .../service_name/db")
    return sentinels, path[0], int(path[1]) if len(path) > 1 else 0, password


def async_redis(url: str, **options: Any) -> aioredis.Redis:
    """An asyncio client for `url` (see the module docstring); `options` go to every connection."""
    if url.startswith(SENTINEL_SCHEME + "://"):
        sentinels, service, db, password = parse_sentinel_url(url)
        sentinel_options = {k: v for k, v in options.items() if k.startswith("socket_")}
        if os.environ.get("REDIS_SENTINEL_PASSWORD"):
            sentinel_options["password"] = os.environ["REDIS_SENTINEL_PASSWORD"]
        sentinel = Sentinel(sentinels, sentinel_kwargs=sentinel_options, **options)
        return sentinel.master_for(service, db=db, password=password)
    return aioredis.Redis.from_url(url, **options)


def masked_url(url: str) -> str:
    """`url` with any password replaced by ***, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
