"""The WeChat mini-program customer-service channel for Rasa, at /webhooks/wechat/webhook.

It acknowledges every push at once with `success`, de-duplicates WeChat's retries, and handles
the message in the background, replying through the customer-service send API. Buttons become
numbered options the shopper may answer with the number; photos are downloaded at once (media
ids expire); messages WeChat refuses to deliver (window closed, quota used up) are kept and noted
on the shopper's open ticket for agents.
The typing indicator goes out in the background and cannot fail or delay the turn.

A push is processed only once it is shown to come from WeChat, now, for this mini-program
(wechatpy and WeChat's 安全模式 rules; see `_authenticate`):
- with an AES key (安全模式) only an `Encrypt` body whose `msg_signature` (sha1 over the sorted
  token, timestamp, nonce and Encrypt) matches is accepted; a plaintext body is refused even when
  its `signature` matches, since that signature does not cover the body. The appid inside the
  ciphertext must be ours. Without an AES key (明文模式) a plaintext body with a matching
  `signature` is accepted: the body is then unauthenticated, so production should use 安全模式;
- the `timestamp` must be within 5 minutes of our clock, and a (signature, nonce) pair is accepted
  once: it is remembered in Redis, shared by every replica, for longer than a timestamp stays
  acceptable, so a triple copied from an access log is worthless;
- `ToUserName` must be the configured mini-program's original id (`gh_...`), when one is set.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

import redis.asyncio as aioredis
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request

from bot.webchat.conversation_ids import openid_of, wechat_conversation
from bot.channels.polite import polite, system_message
from bot.channels.throttle import SenderLimiter, Verdict
from bot.channels.wechat.client import WeChatApi, WeChatApiError, WeChatUndeliverable
from bot.channels.wechat.crypto import MAX_CLOCK_SKEW_S, MessageCrypto, WeChatCryptoError, check_signature, fresh
from bot.channels.wechat.messages import WeChatMessage, WeChatParseError, fields, parse
from bot.handoff.tickets import TicketStore
from bot.redis_url import async_redis
from bot.settings import Settings

logger = logging.getLogger(__name__)
PREFIX = "xb:wechat:"
SEEN_TTL_S = 600
# A timestamp up to 5 minutes ahead of our clock stays acceptable for 10 minutes after it is first
# seen; a used (signature, nonce) pair is remembered a minute longer than that.
REPLAY_TTL_S = 2 * MAX_CLOCK_SKEW_S + 60
OPTIONS_TTL_S = 86400
MAX_IMAGE_BYTES = 5 * 1024 * 1024
HANDLED_KINDS = {"text", "image", "miniprogrampage", "event"}
_ORDER_ID = re.compile(r"(?<!\d)20\d{14}(?!\d)")


class WeChatOutput(OutputChannel):
    def __init__(self, api: WeChatApi, redis: aioredis.Redis) -> None:
        self.api, self.redis = api, redis

    @classmethod
    def name(cls) -> Text:
        return "wechat"

    async def _deliver(self, recipient_id: str, text: str) -> None:
        # recipient_id is the conversation id (`wx:<openid>`, bot.webchat.conversation_ids)
        conversation, openid = wechat_conversation(recipient_id), openid_of(recipient_id)
        try:
            await self.api.send_text(openid, text)
        except WeChatUndeliverable as error:
            logger.warning("WeChat refused delivery to a shopper (%s); kept for agents", error.errcode)
            await self.redis.rpush(f"{PREFIX}undelivered:{openid}", json.dumps({"text": text, "errcode": error.errcode}, ensure_ascii=False))
            ticket = await TicketStore(self.redis).open_ticket_for(conversation)
            if ticket is not None:
                await TicketStore(self.redis).add_note(ticket.id, "微信", f"未送达（{error.errcode}）：{text}")

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self._deliver(recipient_id, text)

    async def send_text_with_buttons(self, recipient_id: Text, text: Text, buttons: List[Dict[Text, Any]], **kwargs: Any) -> None:
        options = "\n".join(f"{n}. {b['title']}" for n, b in enumerate(buttons, 1))
        await self.redis.set(f"{PREFIX}options:{openid_of(recipient_id)}", json.dumps([b["payload"] for b in buttons]), ex=OPTIONS_TTL_S)
        await self._deliver(recipient_id, f"{text}\n{options}\n（回复数字即可选择）")

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        await self._deliver(recipient_id, image)

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        """Citation cards become the short 「依据」 line already in the answer's text."""


class Refused(Exception):
    """A push that is not processed, with the HTTP status WeChat (or whoever sent it) gets."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class WeChatInput(InputChannel):
    @classmethod
    def name(cls) -> Text:
        return "wechat"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        credentials = credentials or {}
        return cls(
            token=credentials.get("token") or "", appid=credentials.get("appid") or "",
            secret=credentials.get("secret") or "", aes_key=credentials.get("aes_key") or "",
            api_base=credentials.get("api_base") or "https://api.weixin.qq.com",
            redis_url=credentials.get("redis_url") or "redis://127.0.0.1:6380/0",
            # The mini-program's original id (gh_...), the ToUserName of every genuine push. Taken
            # from the environment when credentials.yml does not name it (see credentials.yml).
            original_id=credentials.get("original_id") or os.environ.get("WECHAT_ORIGINAL_ID") or "",
        )

    def __init__(self, token: str, appid: str, secret: str, aes_key: str, api_base: str, redis_url: str,
                 original_id: str = "") -> None:
        self.token, self.appid, self.original_id = token, appid, original_id
        self.crypto = MessageCrypto(token, aes_key, appid) if aes_key else None
        if token and not original_id:
            logger.warning("WECHAT_ORIGINAL_ID is not set: pushes' ToUserName is not checked")
        if token and self.crypto is None:
            logger.warning("WECHAT_AES_KEY is not set: WeChat pushes are accepted in 明文模式, whose "
                           "bodies are not signed; production should use 安全模式")
        self.redis = async_redis(redis_url, socket_timeout=3, socket_connect_timeout=3)
        self.api = WeChatApi(api_base, appid, secret, self.redis)
        self.limiter = SenderLimiter(self.redis, Settings.from_env().sender_max_per_second)
        self.tasks: set = set()

    def get_output_channel(self) -> Optional[OutputChannel]:
        return WeChatOutput(self.api, self.redis)

    async def _authenticate(self, request: Request, data: Dict[str, Any]) -> Dict[str, Any]:
        """The push's fields once it is shown to be WeChat's, fresh, first seen and ours; else
        raises Refused (403, or 400 for a signed ciphertext that does not decrypt)."""
        args = request.args
        timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
        if self.crypto is not None:
            if "Encrypt" not in data:
                raise Refused(403, "plaintext push while 安全模式 is configured")
            proof = args.get("msg_signature", "")
            if not check_signature(self.token, proof, timestamp, nonce, str(data["Encrypt"])):
                raise Refused(403, "bad msg_signature")
        else:
            if "Encrypt" in data:
                raise Refused(403, "encrypted push but no AES key is configured")
            proof = args.get("signature", "")
            if not check_signature(self.token, proof, timestamp, nonce):
                raise Refused(403, "bad signature")
        if not fresh(timestamp, time.time()):
            raise Refused(403, "timestamp more than 5 minutes off")
        if not await self.redis.set(f"{PREFIX}nonce:{proof}:{nonce}", "1", nx=True, ex=REPLAY_TTL_S):
            raise Refused(403, "(signature, nonce) seen before")
        if self.crypto is not None:
            self._check_recipient(data, required=False)  # the envelope's, when present
            try:
                data = fields(self.crypto.decrypt(str(data["Encrypt"])).encode())
            except (WeChatCryptoError, WeChatParseError, ValueError) as error:
                raise Refused(400, f"undecryptable push: {error}") from error
        self._check_recipient(data, required=True)
        return data

    def _check_recipient(self, data: Dict[str, Any], required: bool) -> None:
        if not self.original_id or (not required and "ToUserName" not in data):
            return
        if str(data.get("ToUserName", "")) != self.original_id:
            raise Refused(403, "ToUserName is not this mini-program")

    async def _first_time(self, message: WeChatMessage) -> bool:
        return bool(await self.redis.set(f"{PREFIX}seen:{message.dedupe_key}", "1", nx=True, ex=SEEN_TTL_S))

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("wechat_webhook", __name__)
        handle = polite(on_new_message)

        @webhook.route("/", methods=["GET"])
        async def health(request: Request) -> response.HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> response.HTTPResponse:
            args = request.args
            if check_signature(self.token, args.get("signature", ""), args.get("timestamp", ""), args.get("nonce", "")):
                return response.text(args.get("echostr", ""))
            return response.text("forbidden", status=403)

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> response.HTTPResponse:
            try:
                data = fields(request.body or b"")
            except (WeChatParseError, ValueError):
                return response.text("bad request", status=400)
            try:
                data = await self._authenticate(request, data)
            except Refused as refusal:
                logger.warning("refused a WeChat push: %s", refusal.reason)
                return response.text("forbidden" if refusal.status == 403 else "bad request", status=refusal.status)
            try:
                message = parse(data)
            except (WeChatParseError, ValueError):
                return response.text("bad request", status=400)
            if message.kind in HANDLED_KINDS and await self._first_time(message):
                verdict = await self.limiter.check(wechat_conversation(message.from_user))
                if verdict is Verdict.ALLOWED:
                    self._in_background(self._process(message, handle))
                elif verdict is Verdict.NOTIFY:
                    self._in_background(self._slow_down(message.from_user))
            return response.text("success")  # within WeChat's 5 s, whatever happens next

        return webhook

    def _in_background(self, work: Awaitable[None]) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _slow_down(self, openid: str) -> None:
        try:
            await WeChatOutput(self.api, self.redis).send_text_message(openid, system_message("slow_down"))
        except WeChatApiError as error:
            logger.error("could not ask a flooding sender to slow down: %s", error)

    async def _process(self, message: WeChatMessage, handle: Callable[[UserMessage], Awaitable[Any]]) -> None:
        openid = message.from_user
        output = WeChatOutput(self.api, self.redis)
        try:
            try:
                text, metadata = await self._to_rasa(message)
            except WeChatApiError as error:
                if message.kind != "image":
                    raise
                logger.warning("could not fetch a shopper's photo: %s", error)
                await output.send_text_message(openid, system_message("image_rejected"))
                return
            if text is None:
                return
            self._in_background(self.api.typing(openid))  # cosmetic: the turn never waits for it
            await handle(UserMessage(text, output, wechat_conversation(openid), input_channel=self.name(),
                                     metadata={**metadata, "wechat_openid": openid}))
        except WeChatApiError as error:
            logger.error("WeChat API error while handling a push: %s", error)
        except Exception:
            logger.exception("failed to handle a WeChat push")

    async def _to_rasa(self, message: WeChatMessage):
        if message.kind == "text":
            return await self._chosen_option(message.from_user, message.content.strip()), {}
        if message.kind == "image":
            return "", {"attachments": [await self._store_image(message)]}
        if message.kind == "miniprogrampage":
            return f"{message.title} {message.page_path}".strip(), {"miniprogrampage": message.page_path}
        if message.kind == "event" and message.event == "user_enter_tempsession":
            order = _ORDER_ID.search(message.session_from or "")
            greeting = "/greet" + (json.dumps({"order_id": order.group(0)}) if order else "")
            return greeting, {"session_from": message.session_from}
        return None, {}

    async def _chosen_option(self, openid: str, text: str) -> str:
        """「2」 after numbered options means the second button's payload."""
        if text.isdigit():
            stored = await self.redis.get(f"{PREFIX}options:{openid}")
            options = json.loads(stored) if stored else []
            if 1 <= int(text) <= len(options):
                return options[int(text) - 1]
        return text

    async def _store_image(self, message: WeChatMessage) -> str:
        data = await self.api.download_media(message.media_id, MAX_IMAGE_BYTES)
        folder = Path(Settings.from_env().var_dir) / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{uuid.uuid4().hex}.jpg"
        (folder / name).write_bytes(data)
        return f"wechat-media:{name}"
