"""Wraps a channel's message handler so the shopper never meets silence.

A turn that raises (e.g. Redis is down) ends with an apology. So does a turn whose conversation
the tracker store could not read or keep (it says so on the turn's `bot.stores.outcome`, since
Rasa's FailSafeTrackerStore swallows its exceptions): the shopper is asked to send it again. So does a turn that produced no
reply at all while the conversation is not paused: that is what Rasa does when the action
server is unreachable (it logs the error and carries on without the action's messages).
Text no parser can take is made safe first: no text becomes empty, and lone UTF-16 surrogates
(JSON escapes such as "\\ud800", which spaCy and every UTF-8 encoder refuse) become U+FFFD.
A message longer than MAX_MESSAGE_CHARS (or with metadata over MAX_METADATA_CHARS) is refused
before anything else, with the polite 「消息太长了」: it never reaches NLU or the tracker store.
"""

from __future__ import annotations

import json
import logging
import re
from functools import lru_cache
from typing import Any, Awaitable, Callable, Dict, Text

import yaml
from rasa.core.channels.channel import OutputChannel, UserMessage
from sanic import Sanic
from sanic.exceptions import SanicException

from bot.paths import SYSTEM_MESSAGES
from bot.stores import outcome

logger = logging.getLogger(__name__)

MessageHandler = Callable[[UserMessage], Awaitable[Any]]
RASA_APP_NAMES = ("rasa_server", "rasa_core_no_api")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@lru_cache(maxsize=1)
def system_message(key: str) -> str:
    return yaml.safe_load(SYSTEM_MESSAGES.read_text(encoding="utf-8"))[key]


class CountingOutputChannel(OutputChannel):
    """Passes every bot message through to the real channel, counting them."""

    def __init__(self, inner: OutputChannel) -> None:
        self.inner = inner
        self.sent = 0

    def name(self) -> Text:  # type: ignore[override]
        return self.inner.name()

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        self.sent += 1
        await self.inner.send_response(recipient_id, message)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)


async def conversation_paused(sender_id: Text) -> bool:
    """Whether a person has taken the conversation over (then silence is expected)."""
    for name in RASA_APP_NAMES:
        try:
            agent = Sanic.get_app(name).ctx.agent
        except (SanicException, AttributeError):
            continue
        tracker = await agent.tracker_store.retrieve(sender_id)
        return bool(tracker and tracker.is_paused())
    return False


MAX_METADATA_CHARS = 8192  # a customer token and a few attachment URLs fit many times over


@lru_cache(maxsize=1)
def max_message_chars() -> int:
    from bot.settings import Settings

    return Settings.from_env().max_message_chars


def too_long(message: UserMessage) -> bool:
    """Whether a message is over the limits: checked before NLU and before anything is stored."""
    if len(message.text or "") > max_message_chars():
        return True
    try:
        return len(json.dumps(message.metadata or {}, ensure_ascii=False, default=str)) > MAX_METADATA_CHARS
    except (TypeError, ValueError):
        return True


async def refuse_too_long(message: UserMessage) -> None:
    logger.warning("refused a message of %d characters from conversation %s (limit %d)",
                   len(message.text or ""), message.sender_id, max_message_chars())
    if message.output_channel is not None:
        await message.output_channel.send_text_message(
            message.sender_id, system_message("message_too_long").format(max_chars=max_message_chars()))


def polite(on_new_message: MessageHandler) -> MessageHandler:
    """Runs the turn; on an error or an unexplained silence, tells the shopper to resend."""

    async def handle(message: UserMessage) -> Any:
        if too_long(message):  # before NLU and before storage
            await refuse_too_long(message)
            return None
        message.text = _LONE_SURROGATE.sub("\ufffd", message.text or "")
        inner = message.output_channel
        counting = CountingOutputChannel(inner) if inner is not None else None
        message.output_channel = counting
        try:
            with outcome.watching(message.sender_id) as turn:
                result = await on_new_message(message)
        except Exception:
            logger.exception("turn failed for conversation %s", message.sender_id)
            await _apologise(inner, message.sender_id)
            return None
        if turn.failure is not None:  # the store could not read or keep this turn: ask again
            logger.error("turn for conversation %s was not stored (%s)", message.sender_id, turn.failure)
            await _apologise(inner, message.sender_id, "turn_not_saved")
            return result
        if counting is not None and counting.sent == 0 and not await _paused_or_unknown(message.sender_id):
            logger.error("turn for conversation %s produced no reply (action server down?)", message.sender_id)
            await _apologise(inner, message.sender_id)
        return result

    return handle


async def _paused_or_unknown(sender_id: Text) -> bool:
    try:
        return await conversation_paused(sender_id)
    except Exception:  # the store is unreachable: the turn itself will have said so
        logger.exception("could not read conversation %s", sender_id)
        return True


async def _apologise(channel: OutputChannel, sender_id: Text, key: str = "turn_failed") -> None:
    if channel is not None:
        await channel.send_text_message(sender_id, system_message(key))
