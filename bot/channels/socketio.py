"""Rasa's socket.io channel, answering politely when a turn fails, with working custom payloads.

Rasa 3.6's SocketIOOutput passes a custom payload's keys straight to `sio.emit(**payload)`, so a
payload such as {"type": "rights_answer", ...} raises a TypeError and the turn fails. Here custom
payloads go out as `bot_uttered` events of the form {"custom": {...}}, like text goes out as
{"text": ...}.

A `user_uttered` event that is not {"message": "<text>", ...} gets a polite reply instead of an
exception (Rasa builds the message before any wrapper could catch it), and messages from a
flooding sender are limited before NLU runs (bot.channels.throttle).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Text

from rasa.core.channels.channel import OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput
from sanic import Blueprint

from bot.channels.polite import MessageHandler, polite, system_message
from bot.channels.throttle import shared_limiter, throttled


class SocketIOPayloadOutput(SocketIOOutput):
    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        await self.sio.emit(self.bot_message_evt, {"custom": json_message}, room=recipient_id)


def _with_payload_output(on_new_message: MessageHandler) -> MessageHandler:
    async def handle(message: UserMessage) -> Any:
        channel = message.output_channel
        if type(channel) is SocketIOOutput:
            message.output_channel = SocketIOPayloadOutput(channel.sio, channel.bot_message_evt)
        return await on_new_message(message)

    return handle


class PoliteSocketIOInput(SocketIOInput):
    @classmethod
    def name(cls) -> Text:
        return "socketio"

    def get_output_channel(self) -> Optional[OutputChannel]:
        channel = super().get_output_channel()
        return SocketIOPayloadOutput(channel.sio, channel.bot_message_evt) if channel is not None else None

    def blueprint(self, on_new_message: MessageHandler) -> Blueprint:
        blueprint = super().blueprint(_with_payload_output(throttled(polite(on_new_message), shared_limiter())))
        handlers = self.sio.handlers[self.namespace or "/"]
        handle_message = handlers[self.user_message_evt]

        async def checked(sid: Text, data: Any) -> None:
            if isinstance(data, dict) and isinstance(data.get("message", ""), (str, type(None))):
                await handle_message(sid, data)
            else:
                await self.sio.emit(self.bot_message_evt, {"text": system_message("bad_request")}, room=sid)

        handlers[self.user_message_evt] = checked
        return blueprint
