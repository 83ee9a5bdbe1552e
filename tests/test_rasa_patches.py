"""The compiled action-result validator accepts and rejects exactly what Rasa's own does."""

from __future__ import annotations

import pytest
from jsonschema import ValidationError, validate
from rasa.core.actions.action import RemoteAction
from rasa.utils.endpoints import EndpointConfig

import bot.channels  # noqa: F401  (installs the patches, as in the Rasa server)
from bot.rasa_patches import _validate_action_result

VALID = [
    {"events": [{"event": "slot", "name": "order_id", "value": "2024061812345678"}],
     "responses": [{"text": "好的"}]},
    {"events": [], "responses": []},
    {"responses": [{"custom": {"type": "rights_answer"}}]},
]
INVALID = [
    {"events": [{"no_event_key": 1}]},
    {"events": "not a list"},
    {"responses": [123]},
]


def action() -> RemoteAction:
    return RemoteAction("action_answer_question", EndpointConfig("http://127.0.0.1:1/webhook"))


def test_the_patch_is_installed():
    assert RemoteAction._validate_action_result is _validate_action_result


@pytest.mark.parametrize("result", VALID)
def test_valid_results_pass_both(result):
    validate(result, RemoteAction.action_response_format_spec())  # Rasa's own check agrees
    assert action()._validate_action_result(result) is True


@pytest.mark.parametrize("result", INVALID)
def test_invalid_results_fail_both_with_rasas_hint(result):
    with pytest.raises(ValidationError):
        validate(result, RemoteAction.action_response_format_spec())
    with pytest.raises(ValidationError, match="Failed to validate Action server response"):
        action()._validate_action_result(result)
