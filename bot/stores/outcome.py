"""How a turn's storage went, told to whoever carried the turn, without exceptions.

Rasa wraps every tracker store in `FailSafeTrackerStore`, which swallows exceptions: a failed
read becomes a brand-new conversation, and a failed write goes to an in-memory store that
nobody reads. So the tracker store does not rely on an exception to reach the channel. Whoever
hands a conversation's message to Rasa (the polite channel wrapper, or the HTTP API middleware
in `bot.rasa_patches`) opens a `TurnOutcome` for it first. When the store cannot read or write
that conversation, it records why on the outcome and carries on without raising. The channel
then asks the shopper to send the message again, and the API answers 503.

The outcome lives in a ContextVar. Rasa runs a turn in the task of the request that carried
it, so the store, deep inside Rasa, sees the outcome its channel opened.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Iterator, Optional, Tuple

UNAVAILABLE = "unavailable"  # Redis could not be reached within the retry window
CONFLICT = "conflict"  # the stored conversation is not what this turn read (another writer)


@dataclass
class TurnOutcome:
    sender_id: str
    # Only `PUT /conversations/<id>/tracker/events` may replace a stored conversation.
    may_replace: bool = False
    failure: Optional[str] = None


_CURRENT: ContextVar[Optional[TurnOutcome]] = ContextVar("xiaobao_turn_outcome", default=None)


@contextmanager
def watching(sender_id: str, may_replace: bool = False) -> Iterator[TurnOutcome]:
    """Opens the outcome of one turn (or one API call) on conversation `sender_id`."""
    outcome = TurnOutcome(sender_id, may_replace)
    token = _CURRENT.set(outcome)
    try:
        yield outcome
    finally:
        _CURRENT.reset(token)


def open_outcome(sender_id: str, may_replace: bool = False) -> Tuple[TurnOutcome, Token]:
    """Like `watching`, for code that opens and closes in different places (HTTP middleware);
    pass the token to `close`."""
    outcome = TurnOutcome(sender_id, may_replace)
    return outcome, _CURRENT.set(outcome)


def close(token: Token) -> None:
    _CURRENT.reset(token)


def current(sender_id: str) -> Optional[TurnOutcome]:
    outcome = _CURRENT.get()
    return outcome if outcome is not None and outcome.sender_id == sender_id else None


def report(sender_id: str, failure: str) -> bool:
    """Records `failure` for the watched turn on `sender_id`. False if nobody is watching, in
    which case the caller should raise as before."""
    outcome = current(sender_id)
    if outcome is None:
        return False
    outcome.failure = outcome.failure or failure
    return True


def may_replace(sender_id: str) -> bool:
    outcome = current(sender_id)
    return bool(outcome and outcome.may_replace)
