"""Rasa's REST channel (/webhooks/rest/webhook), answering politely when a turn fails."""

from __future__ import annotations

from typing import Text

from rasa.core.channels.rest import RestInput
from sanic import Blueprint

from bot.channels.polite import MessageHandler, polite


class PoliteRestInput(RestInput):
    @classmethod
    def name(cls) -> Text:
        return "rest"

    def blueprint(self, on_new_message: MessageHandler) -> Blueprint:
        return super().blueprint(polite(on_new_message))
