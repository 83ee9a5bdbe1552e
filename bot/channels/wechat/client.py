"""WeChat API client: a shared access token in Redis, the customer-service send API, typing and
media. Errors carry WeChat's errcode and errmsg.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, Optional

import aiohttp
import redis.asyncio as aioredis

logger = logging.getLogger(__name__)

TOKEN_KEY = "xb:wechat:access_token"
REFRESH_MARGIN_S = 300  # refresh well before WeChat's 7200 s expiry
STALE_TOKEN_CODES = {40001, 40014, 42001}
BUSY_CODE = -1
WINDOW_CLOSED, QUOTA_USED_UP = 45015, 45047
RETRIES_WHEN_BUSY = 3


class WeChatApiError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat error {errcode}: {errmsg}")
        self.errcode, self.errmsg = errcode, errmsg


class WeChatUndeliverable(WeChatApiError):
    """The shopper cannot be reached now (window closed or quota used up); keep the message."""


class WeChatApi:
    def __init__(self, base_url: str, appid: str, secret: str, redis: aioredis.Redis,
                 timeout_s: float = 5.0, backoff_s: float = 0.5) -> None:
        self._base = base_url.rstrip("/")
        self._appid, self._secret = appid, secret
        self._redis = redis
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._backoff_s = backoff_s
        self._session: Optional[aiohttp.ClientSession] = None
        self._refreshing = asyncio.Lock()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def access_token(self, force: bool = False) -> str:
        """The token every process shares; fetched once and cached until shortly before expiry."""
        if not force:
            cached = await self._redis.get(TOKEN_KEY)
            if cached:
                return cached.decode()
        async with self._refreshing:
            cached = None if force else await self._redis.get(TOKEN_KEY)
            if cached:
                return cached.decode()
            body = {"grant_type": "client_credential", "appid": self._appid, "secret": self._secret,
                    "force_refresh": force}
            async with self._client().post(self._base + "/cgi-bin/stable_token", json=body) as response:
                data = await response.json(content_type=None)
            if "access_token" not in data:
                raise WeChatApiError(int(data.get("errcode", -1)), str(data.get("errmsg", "no token")))
            ttl = max(60, int(data.get("expires_in", 7200)) - REFRESH_MARGIN_S)
            await self._redis.set(TOKEN_KEY, data["access_token"], ex=ttl)
            return data["access_token"]

    async def _post(self, path: str, body: Dict[str, Any]) -> Dict[str, Any]:
        refreshed, busy = False, 0
        while True:
            token = await self.access_token(force=False)
            async with self._client().post(f"{self._base}{path}", params={"access_token": token}, json=body) as response:
                data = await response.json(content_type=None)
            code = int(data.get("errcode", 0))
            if code == 0:
                return data
            if code in STALE_TOKEN_CODES and not refreshed:
                refreshed = True
                await self._redis.delete(TOKEN_KEY)
                await self.access_token(force=True)
                continue
            if code == BUSY_CODE and busy < RETRIES_WHEN_BUSY:
                busy += 1
                await asyncio.sleep(self._backoff_s * 2 ** (busy - 1))
                continue
            error_type = WeChatUndeliverable if code in (WINDOW_CLOSED, QUOTA_USED_UP) else WeChatApiError
            raise error_type(code, str(data.get("errmsg", "")))

    async def send_text(self, openid: str, text: str) -> None:
        await self._post("/cgi-bin/message/custom/send", {"touser": openid, "msgtype": "text", "text": {"content": text}})

    async def typing(self, openid: str, on: bool = True) -> None:
        await self._post("/cgi-bin/message/custom/typing", {"touser": openid, "command": "Typing" if on else "CancelTyping"})

    async def download_media(self, media_id: str, max_bytes: int) -> bytes:
        token = await self.access_token()
        async with self._client().get(f"{self._base}/cgi-bin/media/get",
                                      params={"access_token": token, "media_id": media_id}) as response:
            if response.content_type == "application/json":
                data = await response.json()
                raise WeChatApiError(int(data.get("errcode", -1)), str(data.get("errmsg", "")))
            if (response.content_length or 0) > max_bytes:
                raise WeChatApiError(-2, "image too large")
            data = await response.content.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise WeChatApiError(-2, "image too large")
            return data

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
