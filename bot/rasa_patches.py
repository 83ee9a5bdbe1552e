"""Performance fixes to Rasa 3.6 internals, installed in the Rasa server process.

`RemoteAction._validate_action_result` calls `jsonschema.validate(result, schema)` for every
custom-action response. That function first re-checks the (constant) schema against the JSON
Schema meta-schema, which profiling under load showed to be a quarter of the Rasa server's CPU.
Here the schema is checked once and its compiled validator reused; every response is still
validated against the same schema, and failures raise the same `ValidationError` with Rasa's hint.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, Text

from jsonschema import validators
from jsonschema.exceptions import best_match
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL


@lru_cache(maxsize=1)
def _action_result_validator() -> Any:
    schema = RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def _validate_action_result(self: RemoteAction, result: Dict[Text, Any]) -> bool:
    error = best_match(_action_result_validator().iter_errors(result))
    if error is None:
        return True
    error.message += (
        ". Failed to validate Action server response from API, make sure your response from the "
        f"Action endpoint is valid. For more information about the format visit {DOCS_BASE_URL}/custom-actions"
    )
    raise error


def install() -> None:
    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[assignment]

