"""Thin client for the Rasa server's HTTP API (token-protected; server side only).

Agent replies use the path checked with Rasa 3.6: POST /conversations/{id}/tracker/events with
output_channel=latest and execute_side_effects=true delivers a `bot` event to the shopper's
channel and records it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Dict, List, Optional

import aiohttp


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
        try:
            async with self._client().request(method, self._base + path, params=query, json=json) as response:
                if response.status >= 400:
                    raise RasaApiError(f"{method} {path}: HTTP {response.status}")
                return await response.json()
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise RasaApiError(f"{method} {path}: {error!r}") from error

    async def tracker(self, sender_id: str) -> Dict[str, Any]:
        return await self._call("GET", f"/conversations/{sender_id}/tracker")

    async def append_events(self, sender_id: str, events: List[Dict[str, Any]], deliver: bool = True) -> None:
        params = {"output_channel": "latest", "execute_side_effects": "true"} if deliver else {}
        await self._call("POST", f"/conversations/{sender_id}/tracker/events", params=params, json=events)

    async def send_bot_message(self, sender_id: str, text: str, metadata: Optional[Dict[str, Any]] = None) -> None:
        await self.append_events(sender_id, [{"event": "bot", "text": text, "timestamp": time.time(),
                                              "metadata": metadata or {}}])

    async def pause(self, sender_id: str) -> None:
        await self.append_events(sender_id, [{"event": "pause", "timestamp": time.time()}], deliver=False)

    async def resume(self, sender_id: str) -> None:
        """The bot answers again. While paused nothing listened, so a listen is recorded too:
        the next message is then judged exactly like any fresh message."""
        await self.append_events(sender_id, [{"event": "resume", "timestamp": time.time()},
                                             {"event": "action", "name": "action_listen", "timestamp": time.time()}],
                                 deliver=False)

    async def trigger_intent(self, sender_id: str, intent: str) -> None:
        await self._call("POST", f"/conversations/{sender_id}/trigger_intent",
                         params={"output_channel": "latest"}, json={"name": intent})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
