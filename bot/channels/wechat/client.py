"""WeChat API client: a shared access token in Redis, the customer-service send API, subscribe
messages, typing and media. Errors carry WeChat's errcode and errmsg.

The token is shared by every process. When WeChat refuses it (40001/40014/42001), one process
at a time fetches a new one under a Redis lock, and only if the refused token is still the shared
one; the others wait for the result. The typing indicator is best effort and never raises.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any, Dict, Optional, Tuple

import aiohttp
import redis.asyncio as aioredis

logger = logging.getLogger(__name__)

TOKEN_KEY = "xb:wechat:access_token"
TYPING_PREFIX = "xb:wechat:typing:"
REFRESH_MARGIN_S = 300  # refresh well before WeChat's 7200 s expiry
REFRESH_LOCK_MS = 10_000  # longer than one token request (5 s timeout); freed early by its owner
REFRESH_WAIT_S = 12.0  # a waiter takes over if the refresher died and its lock expired
REFRESH_POLL_S = 0.05
TYPING_LASTS_MS = 15_000  # WeChat shows typing for 15 s and refuses another meanwhile (45081)
TYPING_TIMEOUT_S = 2.0
STALE_TOKEN_CODES = {40001, 40014, 42001}
BUSY_CODE = -1
WINDOW_CLOSED, QUOTA_USED_UP = 45015, 45047
TYPING_REFUSED = {45080, 45081}  # no shopper message in the last 30 s / already typing
RETRIES_WHEN_BUSY = 3
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


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
        self._release = redis.register_script(_RELEASE)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def access_token(self) -> str:
        """The token every process shares; fetched once and cached until shortly before expiry."""
        cached = await self._redis.get(TOKEN_KEY)
        return cached.decode() if cached else await self._renew(stale=None)

    async def _renew(self, stale: Optional[str]) -> str:
        """A new shared token in place of `stale` (the token WeChat refused; None: there is none).

        One process at a time fetches, holding a lock that only it may release, and only while the
        shared token is still `stale`: whoever comes later uses the token another process stored.
        The old token stays in Redis until the new one overwrites it.
        """
        lock, owner = TOKEN_KEY + ":refresh", uuid.uuid4().hex
        deadline = time.monotonic() + REFRESH_WAIT_S
        while True:
            current = await self._redis.get(TOKEN_KEY)
            if current and current.decode() != stale:
                return current.decode()
            if await self._redis.set(lock, owner, nx=True, px=REFRESH_LOCK_MS):
                try:
                    current = await self._redis.get(TOKEN_KEY)  # stored while we took the lock?
                    if current and current.decode() != stale:
                        return current.decode()
                    token, ttl = await self._fetch_token(force=stale is not None)
                    await self._redis.set(TOKEN_KEY, token, ex=ttl)
                    return token
                finally:
                    await self._release(keys=[lock], args=[owner])
            if time.monotonic() > deadline:
                raise WeChatApiError(BUSY_CODE, "another process did not finish refreshing the access token")
            await asyncio.sleep(REFRESH_POLL_S)

    async def _fetch_token(self, force: bool) -> Tuple[str, int]:
        body = {"grant_type": "client_credential", "appid": self._appid, "secret": self._secret,
                "force_refresh": force}
        async with self._client().post(self._base + "/cgi-bin/stable_token", json=body) as response:
            data = await response.json(content_type=None)
        if "access_token" not in data:
            raise WeChatApiError(int(data.get("errcode", -1)), str(data.get("errmsg", "no token")))
        logger.info("fetched a new WeChat access token (forced: %s)", force)
        return data["access_token"], max(60, int(data.get("expires_in", 7200)) - REFRESH_MARGIN_S)

    async def _post(self, path: str, body: Dict[str, Any], busy_retries: int = RETRIES_WHEN_BUSY,
                    timeout: Optional[aiohttp.ClientTimeout] = None) -> Dict[str, Any]:
        refreshed, busy = False, 0
        token = await self.access_token()
        while True:
            async with self._client().post(f"{self._base}{path}", params={"access_token": token}, json=body,
                                           timeout=timeout or self._timeout) as response:
                data = await response.json(content_type=None)
            code = int(data.get("errcode", 0))
            if code == 0:
                return data
            if code in STALE_TOKEN_CODES and not refreshed:
                refreshed = True
                token = await self._renew(stale=token)
                continue
            if code == BUSY_CODE and busy < busy_retries:
                busy += 1
                await asyncio.sleep(self._backoff_s * 2 ** (busy - 1))
                continue
            error_type = WeChatUndeliverable if code in (WINDOW_CLOSED, QUOTA_USED_UP) else WeChatApiError
            raise error_type(code, str(data.get("errmsg", "")))

    async def send_text(self, openid: str, text: str) -> None:
        await self._post("/cgi-bin/message/custom/send", {"touser": openid, "msgtype": "text", "text": {"content": text}})
        await self._forget_typing(openid)  # a message ends WeChat's typing state

    async def send_subscribe(self, openid: str, template_id: str, data: Dict[str, str], page: str = "") -> None:
        """A subscribe message (订阅消息, subscribeMessage.send): needs no open chat, only the user's
        earlier consent to this template; WeChat answers 43101 without it. `data` maps the
        template's fields (thing1, ...) to their values."""
        body: Dict[str, Any] = {"touser": openid, "template_id": template_id, "lang": "zh_CN",
                                "data": {name: {"value": value} for name, value in data.items()}}
        if page:
            body["page"] = page
        await self._post("/cgi-bin/message/subscribe/send", body)

    async def typing(self, openid: str, on: bool = True) -> None:
        """Shows (or cancels) 「对方正在输入」. Cosmetic: never raises, never retries, gives up after
        TYPING_TIMEOUT_S, and is not re-sent while WeChat still shows it (any process sent it)."""
        try:
            if not on:
                await self._forget_typing(openid)
            elif not await self._redis.set(TYPING_PREFIX + openid, "1", nx=True, px=TYPING_LASTS_MS):
                return
            await self._post("/cgi-bin/message/custom/typing", {"touser": openid, "command": "Typing" if on else "CancelTyping"},
                             busy_retries=0, timeout=aiohttp.ClientTimeout(total=TYPING_TIMEOUT_S))
        except WeChatApiError as error:
            log = logger.debug if error.errcode in TYPING_REFUSED else logger.info
            log("typing indicator not shown: %s", error)
        except Exception as error:  # noqa: BLE001 - nothing cosmetic may reach the turn
            logger.info("typing indicator not shown: %r", error)

    async def _forget_typing(self, openid: str) -> None:
        try:
            await self._redis.delete(TYPING_PREFIX + openid)
        except Exception as error:  # noqa: BLE001 - bookkeeping for a cosmetic call
            logger.debug("could not clear the typing mark: %r", error)

    async def download_media(self, media_id: str, max_bytes: int) -> bytes:
        token, refreshed = await self.access_token(), False
        while True:
            async with self._client().get(f"{self._base}/cgi-bin/media/get",
                                          params={"access_token": token, "media_id": media_id}) as response:
                if response.content_type == "application/json":
                    data = await response.json()
                    code = int(data.get("errcode", -1))
                    if code in STALE_TOKEN_CODES and not refreshed:
                        token, refreshed = await self._renew(stale=token), True
                        continue
                    raise WeChatApiError(code, str(data.get("errmsg", "")))
                if (response.content_length or 0) > max_bytes:
                    raise WeChatApiError(-2, "image too large")
                data = await response.content.read(max_bytes + 1)
                if len(data) > max_bytes:
                    raise WeChatApiError(-2, "image too large")
                return data

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
