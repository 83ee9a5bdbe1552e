"""A fake WeChat API on loopback: tokens, the customer-service send API, typing and media; and
`WeChatPusher`, which builds pushes as WeChat's servers send them (明文模式 or 安全模式)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

from aiohttp import web

from bot.channels.wechat.crypto import MessageCrypto, signature
from tests.conftest import free_port

IMAGE = b"\xff\xd8\xff\xe0" + b"\0" * 128


class FakeWeChat:
    def __init__(self) -> None:
        self.tokens_issued = 0
        self.sent: List[Dict] = []
        self.typing: List[Dict] = []
        self.scripted_errors: List[int] = []  # errcodes the next send calls answer with
        self.valid_tokens: set = set()
        self.token_delay_s = 0.0  # a slow token endpoint, so concurrent refreshes would overlap
        self.before_send: Optional[Callable[[], Awaitable[None]]] = None  # runs as a send call arrives
        self.typing_refusal: Optional[int] = None  # 45081: every second typing call is refused; 45080: all
        self.typing_delay_s = 0.0
        self.typing_calls = 0
        self.typing_refused: List[Dict] = []

    def app(self) -> web.Application:
        async def stable_token(request: web.Request) -> web.Response:
            await asyncio.sleep(self.token_delay_s)
            self.tokens_issued += 1
            token = f"token-{self.tokens_issued}"
            self.valid_tokens = {token}  # a forced refresh invalidates the old one
            return web.json_response({"access_token": token, "expires_in": 7200})

        def token_ok(request: web.Request) -> bool:
            return request.query.get("access_token") in self.valid_tokens

        async def send(request: web.Request) -> web.Response:
            if self.before_send is not None:
                await self.before_send()
            if not token_ok(request):
                return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
            if self.scripted_errors:
                code = self.scripted_errors.pop(0)
                return web.json_response({"errcode": code, "errmsg": "scripted"})
            self.sent.append(await request.json())
            return web.json_response({"errcode": 0, "errmsg": "ok"})

        async def typing(request: web.Request) -> web.Response:
            await asyncio.sleep(self.typing_delay_s)
            if not token_ok(request):
                return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
            self.typing_calls += 1
            body = await request.json()
            if self.typing_refusal == 45080 or (self.typing_refusal == 45081 and self.typing_calls % 2 == 0):
                self.typing_refused.append(body)
                return web.json_response({"errcode": self.typing_refusal, "errmsg": "refused"})
            self.typing.append(body)
            return web.json_response({"errcode": 0, "errmsg": "ok"})

        async def media(request: web.Request) -> web.Response:
            if request.query.get("media_id") == "huge":
                return web.Response(body=IMAGE + b"\0" * (6 * 1024 * 1024), content_type="image/jpeg")
            return web.Response(body=IMAGE, content_type="image/jpeg")

        app = web.Application()
        app.add_routes([web.post("/cgi-bin/stable_token", stable_token), web.post("/cgi-bin/message/custom/send", send),
                        web.post("/cgi-bin/message/custom/typing", typing), web.get("/cgi-bin/media/get", media)])
        return app

    def texts_to(self, openid: str) -> List[str]:
        return [m["text"]["content"] for m in self.sent if m["touser"] == openid]

    def start_in_thread(self) -> str:
        """Serves on loopback from a daemon thread (for the session-wide Rasa stack)."""
        port = free_port()
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            runner = web.AppRunner(self.app())
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
            ready.set()
            loop.run_forever()

        threading.Thread(target=serve, daemon=True).start()
        ready.wait(10)
        return f"http://127.0.0.1:{port}"


class WeChatPusher:
    """What WeChat's servers send to the push URL for one mini-program.

    安全模式 (an AES key): query `signature`, `timestamp`, `nonce`, `encrypt_type=aes` and
    `msg_signature` (over token, timestamp, nonce and Encrypt); body `{"ToUserName", "Encrypt"}`
    (or the same as XML), the message itself only inside the ciphertext. 明文模式 (no AES key):
    `signature`, `timestamp`, `nonce` and the message as the body.
    """

    def __init__(self, token: str, appid: str, aes_key: str = "", original_id: str = "gh_test") -> None:
        self.token, self.original_id = token, original_id
        self.crypto = MessageCrypto(token, aes_key, appid) if aes_key else None

    def text(self, openid: str, content: str, msg_id: Optional[str] = None, **extra: Any) -> Dict[str, Any]:
        return {"ToUserName": self.original_id, "FromUserName": openid, "CreateTime": int(time.time()),
                "MsgType": "text", "Content": content, "MsgId": msg_id or str(uuid.uuid4().int)[:18], **extra}

    def request(self, message: Dict[str, Any], as_xml: bool = False, encrypted: Optional[bool] = None,
                timestamp: Optional[str] = None, nonce: Optional[str] = None) -> Tuple[Dict[str, str], bytes]:
        """(query, body) of the push of `message`; encrypted when an AES key is set, unless told."""
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or str(uuid.uuid4().int)[:10]
        body = _xml(message) if as_xml else json.dumps(message, ensure_ascii=False)
        query = {"signature": signature(self.token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
        if self.crypto is not None if encrypted is None else encrypted:
            encrypt = self.crypto.encrypt(body)
            envelope = {"ToUserName": str(message.get("ToUserName", self.original_id)), "Encrypt": encrypt}
            body = _xml(envelope) if as_xml else json.dumps(envelope)
            query.update(encrypt_type="aes", msg_signature=signature(self.token, timestamp, nonce, encrypt))
        return query, body.encode()


def _xml(fields: Dict[str, Any]) -> str:
    return "<xml>" + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items()) + "</xml>"
