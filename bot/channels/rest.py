"""Rasa's REST channel (/webhooks/rest/webhook), answering politely when a turn fails.

The sender id is limited to [A-Za-z0-9_-]{1,64}, so a REST client can never name another channel's
conversation (`wx:<openid>`, `web:<session>`; bot.webchat.conversation_ids).
A body that is not {"sender": "<id>", "message": "<text>"} gets HTTP 400 with a JSON error
(stock Rasa answers some with HTTP 500 and others with silence). Messages from a flooding
sender are limited before NLU runs (bot.channels.throttle).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Text

from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.exceptions import InvalidUsage
from sanic.request import Request

from bot.webchat.conversation_ids import REST_NAMESPACE, valid_id
from bot.channels.polite import MessageHandler, polite, system_message
from bot.channels.throttle import limit_body_size, shared_limiter, throttled

MAX_SENDER_CHARS = 64
# Metadata only a channel may set, server side: the REST channel drops these from a client's body
# (a REST client must not claim a WeChat openid) and sets `client_ip` itself.
RESERVED_METADATA = ("wechat_openid", "client_ip")


def malformed(body: Any) -> Optional[str]:
    """Why a webhook body is not a message, or None when it is one."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    if not valid_id(body.get("sender")):  # never a `wx:` or `web:` conversation (bot.webchat.conversation_ids)
        return f"'sender' must be 1 to {MAX_SENDER_CHARS} of the characters A-Z a-z 0-9 _ -"
    if not isinstance(body.get("message"), str):
        return "'message' must be a string"
    if not isinstance(body.get("metadata") or {}, dict):
        return "'metadata' must be a JSON object"
    return None


def bad_request(error: str) -> response.HTTPResponse:
    return response.json({"error": error, "text": system_message("bad_request")}, status=400)


class PoliteRestInput(RestInput):
    @classmethod
    def name(cls) -> Text:
        return "rest"

    def _extract_input_channel(self, request: Request) -> Text:
        # Never the body's "input_channel": a REST client must not pass for the WeChat channel,
        # whose openid metadata identifies a customer (actions.services.customer_of).
        return self.name()

    def get_metadata(self, request: Request) -> Dict[Text, Any]:
        sent = request.json.get("metadata") if isinstance(request.json, dict) else None
        metadata = {k: v for k, v in sent.items() if k not in RESERVED_METADATA} if isinstance(sent, dict) else {}
        metadata["client_ip"] = request.remote_addr or request.ip  # remote_addr: from trusted proxies only
        return metadata

    async def _extract_sender(self, request: Request) -> Optional[Text]:
        return REST_NAMESPACE + request.json.get("sender", None)

    def blueprint(self, on_new_message: MessageHandler) -> Blueprint:
        blueprint = super().blueprint(throttled(polite(on_new_message), shared_limiter()))

        @blueprint.on_request
        async def reject_malformed(request: Request) -> Optional[response.HTTPResponse]:
            if request.method != "POST":
                return None
            try:
                error = malformed(request.json)
            except InvalidUsage:  # not JSON, or not UTF-8
                error = "the body must be JSON"
            return bad_request(error) if error else None

        return limit_body_size(blueprint)
