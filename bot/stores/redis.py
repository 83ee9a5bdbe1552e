"""Rasa tracker and lock stores on Redis that ride out a Redis restart.

Rasa's stock Redis stores give up on the first connection error, so a message that arrives
while Redis restarts is dropped. These keep the stock storage format and add a client that
reconnects and retries with exponential backoff (about 5 s in total) before failing.
"""

from __future__ import annotations

from typing import Any, Optional, Text

import redis
from rasa.core.brokers.broker import EventBroker
from rasa.core.lock_store import RedisLockStore
from rasa.core.tracker_store import RedisTrackerStore
from rasa.shared.core.domain import Domain
from rasa.utils.endpoints import EndpointConfig
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError
from redis.retry import Retry

RETRIES = 9
SOCKET_TIMEOUT_S = 5.0


def resilient_client(url: str) -> redis.Redis:
    """A Redis client for `url` that retries connection errors and a server still loading data."""
    return redis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), RETRIES),
        # OSError: a refused connect() surfaces as the builtin error before redis-py wraps it.
        retry_on_error=[redis.ConnectionError, redis.TimeoutError, BusyLoadingError, OSError],
    )


class ResilientRedisTrackerStore(RedisTrackerStore):
    """Stock RedisTrackerStore format, configured by URL, with a retrying client."""

    def __init__(
        self,
        domain: Domain,
        host: Text = "redis://localhost:6379/0",
        event_broker: Optional[EventBroker] = None,
        record_exp: Optional[float] = None,
        key_prefix: Optional[Text] = None,
        **kwargs: Any,
    ) -> None:
        # Rasa passes the endpoint's `url` as `host`.
        super().__init__(
            domain,
            event_broker=event_broker,
            record_exp=record_exp,
            key_prefix=key_prefix,
        )
        self.red = resilient_client(host)


class ResilientRedisLockStore(RedisLockStore):
    """Stock RedisLockStore semantics, configured by URL, with a retrying client."""

    def __init__(self, endpoint_config: EndpointConfig) -> None:
        super().__init__(key_prefix=endpoint_config.kwargs.get("key_prefix"))
        self.red = resilient_client(endpoint_config.url or "redis://localhost:6379/0")
