"""The producer side of the rights-signal stream: every replica appends events to one Redis stream.

An event is one XADD to "xb:risk:events" (fields: RiskEvent.to_fields()); the consumer group
GROUP reads it (bot/risk/worker.py). Publishing is best effort by design: a rights signal is
worth recording, never worth breaking the shopper's conversation for, so `publish` logs a failure
(the kind and the error class only, never the event's contents) and returns False.
The stream entry id is Redis's own; the event's `id` is what consumers count once.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.risk.events import RiskEvent

PREFIX = "xb:risk:"
STREAM = PREFIX + "events"
GROUP = "detectors"
logger = logging.getLogger(__name__)


def stream_key(prefix: str = PREFIX) -> str:
    return prefix + "events"


class RiskStream:
    def __init__(self, redis: aioredis.Redis, prefix: str = PREFIX) -> None:
        self._redis = redis
        self.key = stream_key(prefix)

    async def publish(self, event: RiskEvent) -> bool:
        """Appends the event; False (logged) when Redis cannot take it. Never raises."""
        try:
            await self._redis.xadd(self.key, event.to_fields())
            return True
        except (RedisError, OSError, ValueError, TypeError) as error:
            logger.warning("rights event (%s) not published: %s", event.kind, type(error).__name__)
            return False
        except Exception as error:  # noqa: BLE001 - a signal never breaks the caller
            logger.warning("rights event (%s) not published: unexpected %s", event.kind, type(error).__name__)
            return False
