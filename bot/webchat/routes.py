"""Web-chat routes, mounted on the web app next to the agent console.

The widget talks to Rasa's socket.io channel directly. The web app adds what a browser must not
do itself: reading the conversation history (the Rasa API token stays here; the signed session id
the socket.io channel issued to the widget is the capability, bot.webchat.conversation_ids), storing uploaded photos, and, for the demo storefront,
signing the logged-in customer's token as a store's backend would.

The JSON routes answer cross-origin requests only from CORS_ORIGINS (exact origins), for a widget
embedded in a storefront on another origin; every other origin gets no CORS headers.
"""

from __future__ import annotations

import logging
import re
import uuid
from pathlib import Path
from typing import Any, Dict, List

from aiohttp import web
from redis.exceptions import RedisError

from bot.risk.stream import stream_key
from bot.transcript import turns
from bot.webchat.conversation_ids import session_secret, verify_session, web_conversation
from bot.webchat.home import HomeMenu, entry_titles
from bot.identity import sign_customer_token
from bot.limits import record_upload
from bot.webchat.uploads import UploadQuota, quota_message, sweeper

HERE = Path(__file__).parent
logger = logging.getLogger(__name__)
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
IMAGE_MAGIC = {b"\xff\xd8\xff": "jpg", b"\x89PNG\r\n\x1a\n": "png", b"RIFF": "webp"}
PUBLIC_PREFIXES = ("/shop", "/widget/", "/chat/", "/uploads/")


def image_kind(head: bytes) -> str | None:
    for magic, kind in IMAGE_MAGIC.items():
        if head.startswith(magic) and (kind != "webp" or head[8:12] == b"WEBP"):
            return kind
    return None


def cors_headers(request: web.Request, settings) -> Dict[str, str]:
    """Allow-Origin for a configured origin only (never `*`); Vary, since the answer depends on it."""
    origin = request.headers.get("Origin", "")
    try:
        allowed = settings.allowed_origins
    except ValueError:  # a malformed CORS_ORIGINS allows nobody (the runner refuses to start)
        allowed = ()
    if origin and origin in allowed:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {"Vary": "Origin"}


def history_from_tracker(tracker: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The widget's history: bot.transcript's readable turns (taps as the tapped button's title,
    photos, offered buttons, custom payloads, times), without the bot's internal notes."""
    return [turn for turn in turns(tracker.get("events", []), entry_titles()) if turn["text"] or turn["photos"]
            or turn["buttons"] or turn["custom"]]


class DemoRefused(RuntimeError):
    """DEMO=1 with production settings: the web app refuses to start."""


def setup_webchat(app: web.Application, services_key, config_key) -> None:
    menus: List[HomeMenu] = []
    reason = app[config_key].settings.demo_refused  # the config is set before the routes
    if reason:
        raise DemoRefused(reason)

    async def shop(request: web.Request) -> web.Response:
        config = request.app[config_key]
        # Only a demo (DEMO=1, which `make run` sets) mints tokens for demo customers: anywhere
        # else a real store's backend signs its logged-in customer's token, and this page is anonymous.
        customer = request.query.get("customer", "") if config.settings.demo else ""
        token = ""
        if customer in ("c1001", "c1002") and config.settings.store_signing_secret:
            token = sign_customer_token(customer, config.settings.store_signing_secret)
        html = (HERE / "templates" / "shop.html").read_text(encoding="utf-8")
        html = html.replace("{{socket_url}}", config.rasa_public_url).replace("{{customer_token}}", token)
        html = html.replace("{{customer}}", {"c1001": "王女士", "c1002": "李先生"}.get(customer, "游客"))
        return web.Response(text=html, content_type="text/html", headers={
            "Content-Security-Policy": f"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                                       f"connect-src 'self' {config.rasa_public_url} {config.rasa_public_url.replace('http', 'ws', 1)}"})

    async def history(request: web.Request) -> web.Response:
        # Only the widget holding the signed session may read it; the conversation is `web:<session>`.
        session = verify_session(request.query.get("session_id", ""), session_secret(request.app[config_key].settings))
        if session is None:
            return web.json_response({"error": "bad session id"}, status=400)
        tracker = await request.app[services_key].rasa.tracker(web_conversation(session))
        return web.json_response({"messages": history_from_tracker(tracker)},
                                 headers=cors_headers(request, request.app[config_key].settings))

    async def home(request: web.Request) -> web.Response:
        # 「猜你想问」 and the rights topics of the welcome menu; public, the same for every shopper.
        if not menus:  # the Redis client exists once the app has started
            menus.append(HomeMenu(request.app[services_key].redis, stream_key(request.app[config_key].risk_prefix)))
        menu = menus[0]
        try:
            body = await menu.body()
        except (RedisError, OSError) as error:
            logger.warning("chat home without counts (%s)", error)
            body = HomeMenu.fallback()
        return web.json_response(body, headers=cors_headers(request, request.app[config_key].settings))

    async def upload(request: web.Request) -> web.Response:
        if (request.content_length or 0) > MAX_UPLOAD_BYTES + 4096:
            return web.json_response({"error": "图片不能超过5MB"}, status=413)
        reader = await request.multipart()
        part = await reader.next()
        if part is None or part.name != "image":
            return web.json_response({"error": "没有收到图片"}, status=400)
        data = bytearray()  # read in chunks, so a chunked upload without a length stops at the limit
        while chunk := await part.read_chunk(64 * 1024):
            data += chunk
            if len(data) > MAX_UPLOAD_BYTES:
                return web.json_response({"error": "图片不能超过5MB"}, status=413)
        data = bytes(data)
        kind = image_kind(data[:16])
        if kind is None:
            return web.json_response({"error": "只支持 JPG、PNG、WebP 图片"}, status=415)
        settings = request.app[config_key].settings
        # Quotas per sender (its signed web session, and its IP) and for everyone, reserved before
        # the file is written (bot.webchat.uploads).
        signed = verify_session(request.query.get("session_id", ""), session_secret(settings))
        senders = [f"ip:{request.remote or '?'}"] + ([web_conversation(signed)] if signed else [])
        try:
            allowed = await UploadQuota(request.app[services_key].redis, settings).reserve(senders, len(data))
        except (RedisError, OSError) as error:
            logger.warning("upload refused, quotas cannot be checked (%s)", error)
            return web.json_response({"error": quota_message()}, status=503)
        if not allowed:
            return web.json_response({"error": quota_message()}, status=429,
                                     headers=cors_headers(request, settings))
        folder = settings.uploads_dir
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{uuid.uuid4().hex}.{kind}"
        (folder / name).write_bytes(data)
        # Recorded, so that a return's photo evidence can only be an upload of ours, used by one
        # conversation (the one named here, or else the first to send it: bot.limits.claim_upload).
        session = verify_session(request.query.get("session_id", ""), session_secret(request.app[config_key].settings))
        try:
            await record_upload(request.app[services_key].redis, name, web_conversation(session) if session else None)
        except (RedisError, OSError) as error:
            logger.warning("could not record an upload (%s); it cannot serve as a return's evidence", error)
        return web.json_response({"url": f"{request.scheme}://{request.host}/uploads/{name}"},
                                 headers=cors_headers(request, request.app[config_key].settings))

    async def uploaded(request: web.Request) -> web.FileResponse:
        name = request.match_info["name"]
        if not re.match(r"^[0-9a-f]{32}\.(jpg|png|webp)$", name):
            raise web.HTTPNotFound()
        path = request.app[config_key].settings.uploads_dir / name
        if not path.exists():
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    app.cleanup_ctx.append(sweeper(lambda app: app[config_key].settings))  # uploads past their retention
    app.add_routes([
        web.get("/shop", shop), web.get("/chat/history", history), web.get("/chat/home", home), web.post("/chat/upload", upload),
        web.get("/uploads/{name}", uploaded), web.static("/widget", HERE / "static"),
    ])
