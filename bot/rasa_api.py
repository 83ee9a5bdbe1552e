"""Thin client for the Rasa server's HTTP API (token-protected; server side only).

Agent replies use the path checked with Rasa 3.6: POST /conversations/{id}/tracker/events with
output_channel=latest and execute_side_effects=true delivers a `bot` event to the shopper's
channel and records it.

Conversation ids are chosen by shoppers, so each one goes into the path as exactly one quoted
segment (`path_segment`): `../conversations/<victim>`, `a/b`, `?`, `#`, `%2F` or a lone `..` can
never reach another conversation or another route. The URL is then sent as encoded, so nothing
(yarl included) collapses dot segments or re-decodes escapes on the way.

Rasa 3.6 (Sanic 21.12) hands `<conversation_id:path>` to its handlers without percent-decoding, so
the characters RFC 3986 allows raw in a segment (`:` and `@` among them, as in `wx:<openid>`) are
sent raw and reach Rasa unchanged. An id that needs any escaping reaches Rasa still escaped: a
conversation that does not exist, never somebody else's.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Dict, List, Optional
from urllib.parse import quote

import aiohttp
from yarl import URL

# RFC 3986 pchar minus unreserved (which quote() keeps anyway): legal raw inside one path segment.
_SEGMENT_SAFE = "!$&'()*+,;=:@"


def path_segment(value: str) -> str:
    """`value` as exactly one path segment: `/`, `?`, `#`, `%`, spaces, controls and non-ASCII
    are percent-escaped, and the dot segments `.` and `..` are escaped too (`%2E`)."""
    if not value:
        raise ValueError("an empty id is not a path segment")
    quoted = quote(value, safe=_SEGMENT_SAFE)
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


class RasaApiError(Exception):
    pass


class RasaApi:
    def __init__(self, base_url: str, token: str, timeout_s: float = 10.0) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: Optional[aiohttp.ClientSession] = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def _call(self, method: str, path: str, params: Optional[Dict[str, str]] = None, json: Any = None) -> Any:
        query = {"token": self._token, **(params or {})}
        # `path` is built from path_segment()s only: sent as it is, never normalized or re-quoted.
        url = URL(str(URL(self._base)) + path, encoded=True)
        try:
            async with self._client().request(method, url, params=query, json=json) as response:
                if response.status >= 400:
                    raise RasaApiError(f"{method} {path}: HTTP {response.status}")
                return await response.json()
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise RasaApiError(f"{method} {path}: {error!r}") from error

    @staticmethod
    def _conversation(sender_id: str) -> str:
        try:
            return "/conversations/" + path_segment(sender_id)
        except ValueError as error:
            raise RasaApiError(f"no such conversation: {error}") from error

    async def tracker(self, sender_id: str) -> Dict[str, Any]:
        return await self._call("GET", self._conversation(sender_id) + "/tracker")

    async def append_events(self, sender_id: str, events: List[Dict[str, Any]], deliver: bool = True) -> None:
        params = {"output_channel": "latest", "execute_side_effects": "true"} if deliver else {}
        await self._call("POST", self._conversation(sender_id) + "/tracker/events", params=params,
                         json=events)

    async def send_bot_message(self, sender_id: str, text: str, metadata: Optional[Dict[str, Any]] = None,
                               custom: Optional[Dict[str, Any]] = None) -> None:
        """A bot message delivered to the shopper's channel; with `custom`, also that custom payload
        (a socket.io `bot_uttered` {"custom": ...} after the text)."""
        event: Dict[str, Any] = {"event": "bot", "text": text, "timestamp": time.time(), "metadata": metadata or {}}
        if custom is not None:
            event["data"] = {"custom": custom}
        await self.append_events(sender_id, [event])

    async def pause(self, sender_id: str) -> None:
        await self.append_events(sender_id, [{"event": "pause", "timestamp": time.time()}], deliver=False)

    async def resume(self, sender_id: str) -> None:
        """The bot answers again. While paused nothing listened, so a listen is recorded too:
        the next message is then judged exactly like any fresh message."""
        await self.append_events(sender_id, [{"event": "resume", "timestamp": time.time()},
                                             {"event": "action", "name": "action_listen", "timestamp": time.time()}],
                                 deliver=False)

    async def trigger_intent(self, sender_id: str, intent: str) -> None:
        await self._call("POST", self._conversation(sender_id) + "/trigger_intent",
                         params={"output_channel": "latest"}, json={"name": intent})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
