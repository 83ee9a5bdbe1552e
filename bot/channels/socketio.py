"""Rasa's socket.io channel, answering politely when a turn fails, with working custom payloads.

Rasa 3.6's SocketIOOutput passes a custom payload's keys straight to `sio.emit(**payload)`, so a
payload such as {"type": "rights_answer", ...} raises a TypeError and the turn fails. Here custom
payloads go out as `bot_uttered` events of the form {"custom": {...}}, like text goes out as
{"text": ...}.

A `user_uttered` event that is not {"message": "<text>", ...} gets a polite reply instead of an
exception (Rasa builds the message before any wrapper could catch it), and messages from a
flooding sender are limited before NLU runs (bot.channels.throttle).

Conversations are `web:<session>`: the server issues the session, signed, in `session_confirm`, and
resumes one only with its signature (bot.webchat.conversation_ids); the socket joins that room.

The widget also says whether the shopper is there and typing (`presence` every 20 s, `user_typing`
true/false): recorded in Redis for the agent console (`xb:presence:<conversation>`, TTL 45 s,
deleted on disconnect; `xb:typing:<conversation>`, TTL 6 s) and published on `xb:presence`.
Both name their conversation by the signed session, checked exactly as `session_request` does.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, Optional, Text

from rasa.core.channels.channel import OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput
from sanic import Blueprint

from bot.webchat.conversation_ids import new_session, session_secret, verify_session, web_conversation
from bot.channels.polite import MessageHandler, polite, system_message
from bot.channels.throttle import limit_body_size, shared_limiter, throttled
from bot.redis_url import async_redis
from bot.settings import Settings
from bot.socketio_redis import REDIS_CHANNEL, JsonRedisManager, PresenceRecorder

logger = logging.getLogger(__name__)


class EventGate:
    """Keeps a socket's `user_typing` and `presence` events from flooding Redis and the consoles.

    Per socket and event: the same state again within `repeat_s` is dropped (the widget repeats
    itself anyway: presence every 20 s, typing while keys are pressed), and at most `per_second`
    events pass in any second; a change of state passes within that budget, so 「typing: false」
    right after 「true」 is never lost to the gate. In memory, per process: a socket lives on one.
    """

    def __init__(self, repeat_s: float = 2.0, per_second: int = 4, clock: Callable[[], float] = time.monotonic) -> None:
        self.repeat_s, self.per_second, self.clock = repeat_s, per_second, clock
        self._last: Dict[tuple, tuple] = {}  # (sid, event) -> (state, when)
        self._window: Dict[str, list] = {}  # sid -> [second started, events in it]

    def allow(self, sid: str, event: str, state: Any) -> bool:
        now = self.clock()
        last = self._last.get((sid, event))
        if last is not None and last[0] == state and now - last[1] < self.repeat_s:
            return False
        window = self._window.setdefault(sid, [now, 0])
        if now - window[0] >= 1.0:
            window[:] = [now, 0]
        if window[1] >= self.per_second:
            return False
        window[1] += 1
        self._last[(sid, event)] = (state, now)
        return True

    def forget(self, sid: str) -> None:
        self._window.pop(sid, None)
        for key in [k for k in self._last if k[0] == sid]:
            del self._last[key]


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


def origin_check(settings: Settings) -> Callable[[Optional[str]], bool]:
    """python-socketio's Origin check: exactly the configured origins, and none when none are.

    Always a callable, never a list: python-engineio treats an empty list as "no check at all", so
    CORS_ORIGINS="" used to let every site connect. A malformed CORS_ORIGINS allows nobody.
    """
    try:
        allowed = frozenset(settings.allowed_origins)
    except ValueError:
        allowed = frozenset()
    return lambda origin: origin in allowed


class PoliteSocketIOInput(SocketIOInput):
    # With a Redis URL, bot and agent messages reach a shopper's socket whichever Rasa replica
    # produced them: rooms are shared through python-socketio's Redis client manager.
    redis_url: Optional[Text] = None

    @classmethod
    def name(cls) -> Text:
        return "socketio"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "PoliteSocketIOInput":
        channel = super().from_credentials(credentials)
        channel.redis_url = (credentials or {}).get("redis_url") or None
        channel.session_persistence = True  # conversations are signed sessions, never socket ids
        return channel

    def _share_rooms_through_redis(self) -> None:
        if self.redis_url:
            manager = JsonRedisManager(self.redis_url, channel=REDIS_CHANNEL)
            manager.set_server(self.sio)
            self.sio.manager = manager  # before any socket connects: the manager starts on first use

    def get_output_channel(self) -> Optional[OutputChannel]:
        channel = super().get_output_channel()
        return SocketIOPayloadOutput(channel.sio, channel.bot_message_evt) if channel is not None else None

    def blueprint(self, on_new_message: MessageHandler) -> Blueprint:
        blueprint = super().blueprint(_with_payload_output(throttled(polite(on_new_message), shared_limiter())))
        self._share_rooms_through_redis()
        # Rasa turns python-socketio's Origin check off (cors_allowed_origins=[]); browsers may
        # connect only from the configured origins (the web app's by default). Clients that
        # send no Origin (servers, the WeChat bridge, tests) are unaffected.
        self.sio.eio.cors_allowed_origins = origin_check(Settings.from_env())
        # CORS response headers stay with Sanic-CORS (rasa run --cors), as before: two
        # Access-Control-Allow-Origin headers would make browsers refuse long-polling replies.
        self.sio.eio._cors_headers = lambda environ: []
        handlers = self.sio.handlers[self.namespace or "/"]
        handle_message = handlers[self.user_message_evt]
        secret = session_secret(Settings.from_env())
        sio, namespace = self.sio, self.namespace or "/"
        presence = PresenceRecorder(async_redis(self.redis_url)) if self.redis_url else None
        gate = EventGate()

        async def join(sid: Text, session: Text) -> Text:
            conversation = web_conversation(session)
            sio.enter_room(sid, conversation, namespace=namespace)
            async with sio.session(sid, namespace=namespace) as saved:
                saved["conversation"] = conversation
            return conversation

        async def session_request(sid: Text, data: Any) -> None:
            # A session is resumed only with its signature; anything else starts a new one. The
            # room, and the conversation, is `web:<session>` (bot.webchat.conversation_ids).
            token = data.get("session_id") if isinstance(data, dict) else None
            session = verify_session(token, secret)
            if session is None:
                token = new_session(secret)
                session = verify_session(token, secret)
            conversation = await join(sid, session)
            await sio.emit("session_confirm", token, room=sid, namespace=namespace)
            if presence is not None:
                await presence.seen(conversation, time.time())

        async def checked(sid: Text, data: Any) -> None:
            if not (isinstance(data, dict) and isinstance(data.get("message", ""), (str, type(None)))):
                await sio.emit(self.bot_message_evt, {"text": system_message("bad_request")}, room=sid)
                return
            # The conversation is the signed session the message names, else the one this socket
            # was confirmed in; never a client-chosen id.
            session = verify_session(data.get("session_id"), secret)
            if session is not None:
                conversation = await join(sid, session)
            else:
                conversation = (await sio.get_session(sid, namespace=namespace)).get("conversation")
            if conversation is None:
                await sio.emit(self.bot_message_evt, {"text": system_message("bad_request")}, room=sid)
                return
            await handle_message(sid, {**data, "session_id": conversation})

        async def signed_conversation(sid: Text, data: Any) -> Optional[Text]:
            # Every field is the client's: only a validly signed session names a conversation.
            session = verify_session(data.get("session_id") if isinstance(data, dict) else None, secret)
            return await join(sid, session) if session is not None else None

        async def user_typing(sid: Text, data: Any) -> None:
            typing = isinstance(data, dict) and data.get("typing") is True
            if presence is None or not gate.allow(sid, "typing", typing):
                return
            conversation = await signed_conversation(sid, data)
            if conversation is not None:
                await presence.typing(conversation, typing, time.time())

        async def shopper_present(sid: Text, data: Any) -> None:
            if presence is None or not gate.allow(sid, "presence", True):
                return
            conversation = await signed_conversation(sid, data)
            if conversation is not None:
                await presence.seen(conversation, time.time())

        async def disconnect(sid: Text, *args: Any) -> None:
            gate.forget(sid)
            conversation = (await sio.get_session(sid, namespace=namespace)).get("conversation")
            if conversation is not None and presence is not None:
                await presence.gone(conversation)

        handlers["session_request"] = session_request
        handlers["user_typing"] = user_typing
        handlers["presence"] = shopper_present
        handlers["disconnect"] = disconnect
        handlers[self.user_message_evt] = checked
        self.sio.eio.max_http_buffer_size = min(self.sio.eio.max_http_buffer_size, Settings.from_env().max_body_bytes)
        return limit_body_size(blueprint)
