"""Performance fixes to Rasa 3.6 internals, installed in the Rasa server process.

`RemoteAction._validate_action_result` calls `jsonschema.validate(result, schema)` for every
custom-action response. That function first re-checks the (constant) schema against the JSON
Schema meta-schema, which profiling under load showed to be a quarter of the Rasa server's CPU.
Here the schema is checked once and its compiled validator reused; every response is still
validated against the same schema, and failures raise the same `ValidationError` with Rasa's hint.

The HTTP API (`rasa.server.create_app`) gets two middlewares: each request on
`/conversations/<id>/...` is watched like a channel's turn (`bot.stores.outcome`), so a
conversation the tracker store could not read or store is answered 503 instead of Rasa's 200, and
only `PUT .../tracker/events` may replace a stored conversation.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Callable, Dict, Optional, Text

from jsonschema import validators
from jsonschema.exceptions import best_match
import rasa
import rasa.server
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL
from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from bot.stores import outcome

_rasa_create_app: Callable[..., Sanic] = rasa.server.create_app


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


# --------------------------------------------------------------------------------------------
# The HTTP API's conversation routes, watched like a channel's turn (bot.stores.outcome)
# --------------------------------------------------------------------------------------------

_CONVERSATION_PATH = re.compile(r"^/conversations/(?P<id>[^/]+)/")


async def _watch_conversation_request(request: Request) -> None:
    match = _CONVERSATION_PATH.match(request.path)
    if match is None:
        return
    # Sanic 21.12 does not percent-decode `<conversation_id:path>`: Rasa's handler (and so the
    # tracker store) sees the id exactly as it appears in the path, and so must the outcome.
    sender_id = match.group("id")
    # Only PUT .../tracker/events means "replace this conversation"; everything else appends.
    replacing = request.method == "PUT" and request.path.endswith("/tracker/events")
    request.ctx.turn_outcome, request.ctx.turn_token = outcome.open_outcome(sender_id, may_replace=replacing)


async def _answer_for_the_store(request: Request, response: HTTPResponse) -> Optional[HTTPResponse]:
    turn = getattr(request.ctx, "turn_outcome", None)
    if turn is None:
        return None
    outcome.close(request.ctx.turn_token)
    request.ctx.turn_outcome = None
    if turn.failure is None:
        return None
    # Rasa answered 200, but the conversation was not read or not stored: say so.
    return json_response({"version": rasa.__version__, "status": "failure", "reason": "ConversationNotStored",
                          "message": f"the conversation could not be stored ({turn.failure}); retry",
                          "code": 503}, status=503)


def _create_app(*args: Any, **kwargs: Any) -> Sanic:
    app = _rasa_create_app(*args, **kwargs)
    app.register_middleware(_watch_conversation_request, "request")
    app.register_middleware(_answer_for_the_store, "response")
    return app


def install() -> None:
    global _rasa_create_app
    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[assignment]
    if rasa.server.create_app is not _create_app:
        _rasa_create_app = rasa.server.create_app
        rasa.server.create_app = _create_app

