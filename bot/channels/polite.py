"""Wraps a channel's message handler so a failed turn ends in an apology, not silence."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any, Awaitable, Callable

import yaml
from rasa.core.channels.channel import UserMessage

from bot.paths import SYSTEM_MESSAGES

logger = logging.getLogger(__name__)

MessageHandler = Callable[[UserMessage], Awaitable[Any]]


@lru_cache(maxsize=1)
def system_message(key: str) -> str:
    return yaml.safe_load(SYSTEM_MESSAGES.read_text(encoding="utf-8"))[key]


def polite(on_new_message: MessageHandler) -> MessageHandler:
    """Runs the turn; on any error, logs it and tells the shopper to resend."""

    async def handle(message: UserMessage) -> Any:
        try:
            return await on_new_message(message)
        except Exception:
            logger.exception("turn failed for conversation %s", message.sender_id)
            if message.output_channel is not None:
                await message.output_channel.send_text_message(
                    message.sender_id, system_message("turn_failed")
                )
            return None

    return handle
