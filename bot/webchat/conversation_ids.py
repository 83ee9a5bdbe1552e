"""Conversation ids: one namespace per channel, and the web chat's signed session ids.

Every channel names its conversations in a namespace of its own, applied where the channel
creates the UserMessage, so no channel can reach another's conversations:

- WeChat: `wx:<openid>` (the openid is WeChat's, checked by the push's signature);
- the socket.io web chat: `web:<session>`, where <session> is random and issued by the server
  with an HMAC signature (`<session>.<signature>`, the widget's secret); the history route and
  the socket.io channel accept a session only with its signature;
- REST: the client's own id, limited to [A-Za-z0-9_-]{1,64}. Having no colon, it can never name
  a `wx:` or `web:` conversation (REST_NAMESPACE is empty so that existing REST clients, and the
  tests and tools that read their conversations back by the id they chose, keep working).

Other code (tickets, console, Rasa API, socket rooms) keeps looking conversations up by the
namespaced id; only the WeChat send API needs the bare openid (`openid_of`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import uuid
from functools import lru_cache
from typing import Optional

WECHAT_NAMESPACE = "wx:"
WEB_NAMESPACE = "web:"
REST_NAMESPACE = ""
ID_CHARS = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SESSION = re.compile(r"^([A-Za-z0-9_-]{16,64})\.([A-Za-z0-9_-]{43})$")
_KEY_LABEL = b"xiaobao web-chat session id v1"


def valid_id(value: object) -> bool:
    return isinstance(value, str) and bool(ID_CHARS.match(value))


def wechat_conversation(openid: str) -> str:
    return openid if openid.startswith(WECHAT_NAMESPACE) else WECHAT_NAMESPACE + openid


def openid_of(conversation_id: str) -> str:
    """The bare openid of a WeChat conversation (what WeChat's APIs expect)."""
    return conversation_id[len(WECHAT_NAMESPACE):] if conversation_id.startswith(WECHAT_NAMESPACE) else conversation_id


def web_conversation(session: str) -> str:
    return WEB_NAMESPACE + session


@lru_cache(maxsize=4)
def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), _KEY_LABEL, hashlib.sha256).digest()


def session_secret(settings) -> str:
    """WEBCHAT_SESSION_SECRET, else a key derived from the store signing secret (HMAC with a label
    of its own): both the web app and Rasa have it, and nobody outside does."""
    configured = os.environ.get("WEBCHAT_SESSION_SECRET")
    if configured:
        return configured
    from bot.settings import signing_secret

    return signing_secret(settings)


def _signature(session: str, secret: str) -> str:
    digest = hmac.new(_key(secret), web_conversation(session).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign_session(session: str, secret: str) -> str:
    return f"{session}.{_signature(session, secret)}"


def new_session(secret: str) -> str:
    return sign_session(uuid.uuid4().hex, secret)


def verify_session(token: object, secret: str) -> Optional[str]:
    """The session of a validly signed `<session>.<signature>`, else None."""
    if not isinstance(token, str) or not secret:
        return None
    match = SESSION.match(token)
    if not match or not hmac.compare_digest(_signature(match.group(1), secret), match.group(2)):
        return None
    return match.group(1)
