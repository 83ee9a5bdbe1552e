"""Rasa's socket.io channel, answering politely when a turn fails."""

from __future__ import annotations

from typing import Text

from rasa.core.channels.socketio import SocketIOInput
from sanic import Blueprint

from bot.channels.polite import MessageHandler, polite


class PoliteSocketIOInput(SocketIOInput):
    @classmethod
    def name(cls) -> Text:
        return "socketio"

    def blueprint(self, on_new_message: MessageHandler) -> Blueprint:
        return super().blueprint(polite(on_new_message))
