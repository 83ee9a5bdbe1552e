"""Actions that always end the bot's turn outside a form say so themselves.

Outside a form, every story and rule in `data/` follows `action_answer_question`,
`action_out_of_scope` and `action_order_status` with the shopper's next message
(tests/actions/test_turns.py checks this against the training data). Rasa would still run the
whole policy ensemble (TED, rules, memoization) once more just to predict `action_listen`; under
load that prediction was a sixth of the Rasa server's CPU. A `FollowupAction("action_listen")`
gives Rasa the same answer without the prediction. Inside a form nothing changes: the policies
decide whether the form resumes.
"""

from __future__ import annotations

import functools
from typing import Any, Awaitable, Callable, Dict, List, Text

from rasa_sdk import Tracker
from rasa_sdk.events import FollowupAction

LISTEN = "action_listen"
Events = List[Dict[Text, Any]]


def then_listen(tracker: Tracker, events: Events) -> Events:
    """`events`, plus "now listen" unless a form is active."""
    if (tracker.active_loop or {}).get("name"):
        return events
    return [*events, FollowupAction(LISTEN)]


def ends_turn(run: Callable[..., Awaitable[Events]]) -> Callable[..., Awaitable[Events]]:
    """Decorates an action's `run(self, dispatcher, tracker, domain)`."""

    @functools.wraps(run)
    async def wrapper(self: Any, dispatcher: Any, tracker: Tracker, domain: Any) -> Events:
        return then_listen(tracker, await run(self, dispatcher, tracker, domain))

    wrapper.ends_turn = True  # type: ignore[attr-defined]
    return wrapper
