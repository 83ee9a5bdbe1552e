"""`ends_turn`: an action that says "now listen" must be one the training data always follows
with the shopper's next message outside a form, or the bot would stop talking where the
stories say it goes on."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import pytest
import yaml
from rasa_sdk import Tracker

from actions import fallback, orders, rights
from actions.turns import then_listen
from bot.paths import ROOT

DECORATED = [rights.ActionAnswerQuestion, fallback.ActionOutOfScope, orders.ActionOrderStatus]


def _steps_after(action: str) -> Iterator[Tuple[str, Optional[str], dict]]:
    """(file, active loop at that point, the step after) for each use of `action` in data/."""
    for path in sorted((ROOT / "data").rglob("*.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in (document.get("stories") or []) + (document.get("rules") or []):
            loop = next((c["active_loop"] for c in block.get("condition") or [] if "active_loop" in c), None)
            steps: List[dict] = block.get("steps") or []
            for index, step in enumerate(steps):
                if "active_loop" in step:
                    loop = step["active_loop"]
                if step.get("action") == action:
                    following = steps[index + 1] if index + 1 < len(steps) else {"end": True}
                    yield path.name, loop, following


@pytest.mark.parametrize("action_class", DECORATED, ids=lambda c: c().name())
def test_decorated_actions_are_followed_by_the_shopper_outside_forms(action_class):
    name = action_class().name()
    assert getattr(action_class.run, "ends_turn", False), f"{name}.run is not decorated with @ends_turn"
    uses = list(_steps_after(name))
    assert uses, f"{name} is not in the training data"
    for file, loop, following in uses:
        if loop:
            continue
        assert following.get("end") or "intent" in following or "or" in following or "user" in following, (
            f"{file}: outside a form {name} is followed by {following}, not by the shopper")


def _tracker(active_loop: Optional[str]) -> Tracker:
    return Tracker("s", {}, {"text": "x", "intent": {"name": "ask_rights"}}, [], False, None,
                   {"name": active_loop} if active_loop else {}, None)


def test_outside_a_form_the_turn_ends():
    events = then_listen(_tracker(None), [{"event": "slot", "name": "a", "value": 1}])
    assert events[-1] == {"event": "followup", "name": "action_listen", "timestamp": None}
    assert events[0]["name"] == "a"


def test_inside_a_form_the_policies_decide():
    assert then_listen(_tracker("return_form"), []) == []
