"""The agent console: queue, conversation view, replies, claims and hand-back.

create_app(config) is used by `python -m bot.console serve` and by the tests. Only logged-in
agents reach pages, the JSON API and the WebSocket; every state-changing request carries the
session's CSRF token; shopper text is escaped (Jinja2 autoescape, and textContent in the page).
The Rasa API token stays on this server. The risk alerts (风险预警: page, API and /ws/risk) are
for supervisors only, and every console process also runs a consumer of the risk-event stream.
The agent search (bot.console.search), the order actions on a ticket (bot.console.order_actions)
and the view helpers (bot.console.views: tickets, transcript, evidence pack, photos) live in their
own modules; the routes of the first two are part of the one route table in create_app.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, Optional

import jinja2
import redis.asyncio as aioredis
import yaml
from aiohttp import WSMsgType, web
from aiohttp_session import AbstractStorage, Session, get_session, new_session, setup as setup_session
from redis.exceptions import RedisError

from bot.console import order_actions, search
from bot.console.agents import AgentStore, Presence
from bot.console.order_actions import refunds_of
from bot.console.regulators import setup_regulators
from bot.console.shoppers import PRESENCE_CHANNEL, JsonEmitter, shopper_presence
from bot.console.views import (PHOTO_TYPES, conversation_photos, evidence_view, order_view, photo_file, return_view,
                               thumbnail, ticket_view, transcript_from_tracker)
from bot.handoff.tickets import CLAIMED, Ticket, TicketError, TicketStore, now, queued_payload, wait_minutes
from bot.handoff.triggers import handoff_texts
from bot.orders.client import OrderSystem, OrderSystemError
from bot.orders.factory import order_system_for
from bot.orders.models import to_dict
from bot.paths import KNOWLEDGE_DIR
from bot.rasa_api import RasaApi, RasaApiError
from bot.redis_url import async_redis
from bot.risk.alerts import LIVE, Alert, AlertError, AlertStore
from bot.risk.detector import load_thresholds
from bot.risk.warnings import ShopperWarnings, shopper_warnings_for
from bot.risk.worker import RiskWorker, consumer_name
from bot.settings import Settings
from bot.webchat.routes import PUBLIC_PREFIXES, setup_webchat

logger = logging.getLogger(__name__)
HERE = Path(__file__).parent
# The conversations RedisEventLogTrackerStore keeps (bot/stores/redis.py `_conversation_keys`, with
# endpoints.yml's key_prefix): one event list per conversation. Not imported: the console runs without Rasa.
CONVERSATION_KEY_PATTERN = "xiaobao:events:{*}"
COALESCE_S = 0.05  # a WebSocket sends one queue snapshot for changes this close together
TEXT_CHARS = 2000  # a reply or an internal note


@dataclass(frozen=True)
class ConsoleConfig:
    redis_url: str
    rasa_url: str
    rasa_token: str
    session_key: bytes  # 32 url-safe base64 bytes; keys the Redis names of sessions (HMAC of the cookie)
    secure_cookie: bool = False  # True: always Secure; else Secure whenever the request came over HTTPS
    poll_interval_s: float = 1.0  # how often a watched conversation's transcript is re-read
    refresh_interval_s: float = 30.0  # a full queue refresh, in case a pushed change was missed
    sla_interval_s: float = 5.0
    settings: Settings = Settings.from_env({})
    rasa_public_url: str = "http://127.0.0.1:5005"  # where shoppers' browsers reach socket.io
    trusted_proxies: tuple = ()  # peers whose X-Forwarded-Proto / X-Forwarded-For are believed
    allowed_origins: tuple = ()  # browser origins besides the console's own allowed to open /ws
    login_throttle_prefix: Optional[str] = None  # Redis key prefix of the login limits (tests)
    risk_prefix: str = "xb:risk:"  # Redis key prefix of the risk events and alerts (tests use their own)


class Listener:
    """What one WebSocket has not yet seen: the ids of changed tickets, and a wake-up."""

    def __init__(self) -> None:
        self.changed: set = set()
        self.everything = False  # the feed reconnected: events may have been missed
        self.wake = asyncio.Event()

    def notify(self, ticket_id: Optional[str]) -> None:
        if ticket_id is None:
            self.everything = True
        else:
            self.changed.add(ticket_id)
        self.wake.set()

    def take(self) -> tuple:
        changed, everything = self.changed, self.everything
        self.changed, self.everything = set(), False
        self.wake.clear()
        return changed, everything


class TicketFeed:
    """One subscription per web-app process to a change channel (the tickets', published by every
    ticket transition's script; or the risk alerts'), fanned out to this process's WebSockets."""

    PING_S = 30.0  # an idle subscription is checked this often (a dead one is resubscribed)

    def __init__(self, redis: aioredis.Redis, channel: str, key: str = "id") -> None:
        self.redis, self.channel, self.key = redis, channel, key  # key: the field naming what changed
        self.listeners: set = set()

    def listen(self) -> Listener:
        listener = Listener()
        self.listeners.add(listener)
        return listener

    def forget(self, listener: Listener) -> None:
        self.listeners.discard(listener)

    def _publish(self, ticket_id: Optional[str]) -> None:
        for listener in list(self.listeners):
            listener.notify(ticket_id)

    async def run(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._publish(None)  # anything published while not subscribed was missed
                loop = asyncio.get_running_loop()
                ping_at = loop.time() + self.PING_S
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if loop.time() >= ping_at:
                        await pubsub.ping()
                        ping_at = loop.time() + self.PING_S
                    if message is None or message.get("type") != "message":
                        continue
                    try:
                        ticket_id = json.loads(message["data"])[self.key]
                    except (ValueError, KeyError, TypeError):
                        ticket_id = None
                    self._publish(ticket_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("change feed %s lost; resubscribing", self.channel, exc_info=True)
                await asyncio.sleep(1.0)
            finally:
                try:
                    await pubsub.reset()
                except Exception:
                    pass


@dataclass
class Services:
    redis: aioredis.Redis
    tickets: TicketStore
    agents: AgentStore
    rasa: RasaApi
    orders: OrderSystem
    feed: TicketFeed
    alerts: AlertStore
    risk_feed: TicketFeed  # the alerts' changes, for /ws/risk
    warnings: ShopperWarnings  # 主动告知 when a safety alert is confirmed
    presence: Presence  # which agents have a console open
    shopper_feed: TicketFeed  # shoppers' online/typing changes (contract B), by conversation id
    emitter: JsonEmitter  # events to a shopper's web chat (agent_typing)


SESSION_MAX_AGE_S = 8 * 3600
LOGIN_CSRF_COOKIE = "xb_login"
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)


class ServerSessionStorage(AbstractStorage):
    """Console sessions on the server, so that they can be ended: the cookie holds a random id
    only; the session lives in Redis under an HMAC of that id (a copy of Redis holds no usable
    cookie), with its remaining lifetime as TTL, and is listed in its agent's set of sessions, so
    that removing the agent (AgentStore.remove) ends them all. The cookie is HttpOnly,
    SameSite=Strict, and Secure whenever the request came over HTTPS (see is_https)."""

    def __init__(self, app: web.Application, config: "ConsoleConfig") -> None:
        super().__init__(cookie_name="xb_console", max_age=SESSION_MAX_AGE_S, httponly=True, samesite="Strict")
        self._app, self._hmac_key = app, config.session_key

    def _agents(self) -> AgentStore:
        return self._app[SERVICES].agents

    def _digest(self, session_id: str) -> str:
        return hmac.new(self._hmac_key, session_id.encode(), hashlib.sha256).hexdigest()

    async def load_session(self, request: web.Request) -> Session:
        session_id = self.load_cookie(request)
        if not session_id or not SESSION_ID.match(session_id):
            return Session(None, data=None, new=True, max_age=self.max_age)
        stored = await self._agents()._redis.get(self._agents().session_key(self._digest(session_id)))
        try:
            data = json.loads(stored) if stored is not None else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return Session(None, data=None, new=True, max_age=self.max_age)
        return Session(session_id, data=data, new=False, max_age=self.max_age)

    async def forget(self, session: Session) -> None:
        """Deletes a session from Redis (a logout, or the anonymous session a login replaces)."""
        if session.identity:
            digest = self._digest(str(session.identity))
            agents = self._agents()
            await agents._redis.delete(agents.session_key(digest))
            agent = session.get("agent")
            if agent:
                await agents._redis.srem(agents.sessions_index(agent), digest)

    async def save_session(self, request: web.Request, response: web.StreamResponse, session: Session) -> None:
        secure = request.app[CONFIG].secure_cookie or is_https(request)
        if session.empty:
            await self.forget(session)
            response.del_cookie(self.cookie_name, path="/")
            return
        session_id = str(session.identity) if session.identity else secrets.token_urlsafe(32)
        left = int(session.created + SESSION_MAX_AGE_S - time.time())
        if left <= 0:
            return
        agents, digest = self._agents(), self._digest(session_id)
        pipe = agents._redis.pipeline(transaction=True)
        pipe.set(agents.session_key(digest), json.dumps(self._get_session_data(session)), ex=left)
        agent = session.get("agent")
        if agent:
            pipe.sadd(agents.sessions_index(agent), digest)
            pipe.expire(agents.sessions_index(agent), SESSION_MAX_AGE_S)
        await pipe.execute()
        response.set_cookie(self.cookie_name, session_id, max_age=left, path="/", httponly=True,
                            samesite="Strict", secure=secure)


CONFIG = web.AppKey("config", ConsoleConfig)
SERVICES = web.AppKey("services", Services)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
SESSION_STORAGE = web.AppKey("session_storage", ServerSessionStorage)


@lru_cache(maxsize=1)
def console_texts() -> Dict[str, Any]:
    texts = dict(handoff_texts())
    texts.update(yaml.safe_load((KNOWLEDGE_DIR / "console_messages.yml").read_text(encoding="utf-8")))
    texts["canned"] = yaml.safe_load((KNOWLEDGE_DIR / "canned_replies.yml").read_text(encoding="utf-8"))["replies"]
    return texts


# -- helpers --------------------------------------------------------------------------------
async def current_agent(request: web.Request) -> Optional[str]:
    return (await get_session(request)).get("agent")


def client_ip(request: web.Request) -> str:
    """The client's IP: the peer's, or, when the peer is one of the configured TRUSTED_PROXIES,
    the last address that proxy put in X-Forwarded-For."""
    peer = request.remote or ""
    if peer in request.app[CONFIG].trusted_proxies:
        forwarded = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",") if a.strip()]
        if forwarded:
            return forwarded[-1]
    return peer


def is_https(request: web.Request) -> bool:
    """Whether the browser reached us over HTTPS: directly, or through a trusted proxy that says so
    in X-Forwarded-Proto. The header is ignored from anyone else."""
    if request.secure:  # a TLS socket (aiohttp itself never believes forwarding headers)
        return True
    if (request.remote or "") in request.app[CONFIG].trusted_proxies:
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        return proto == "https"
    return False


def origin_allowed(request: web.Request) -> bool:
    """A browser's WebSocket names the page's origin: only the console's own (the scheme it was
    reached by and its Host) and the configured CONSOLE_ORIGINS may open /ws. No Origin at all is
    not a browser, so not cross-site request forgery; it still needs the session cookie."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    own = f"{'https' if is_https(request) else 'http'}://{request.host}".lower()
    return origin.lower() in {own, *(o.lower() for o in request.app[CONFIG].allowed_origins)}


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}, ensure_ascii=False), content_type="application/json")


async def json_body(request: web.Request) -> Dict[str, Any]:
    """The request's JSON object; 400 (in Chinese) for anything else, never a 500."""
    try:
        body = await request.json() if request.can_read_body else {}
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise bad_request("请求格式不正确，请刷新页面后重试")
    return body


def text_of(body: Dict[str, Any], name: str, what: str) -> str:
    """A reply's or note's text: 1 to TEXT_CHARS characters, as UTF-8 can store it (a lone
    surrogate, which a browser may send escaped, is replaced rather than failing in Redis)."""
    value = body.get(name, "")
    text = (value if isinstance(value, str) else "").strip()
    text = text.encode("utf-8", "replace").decode("utf-8")
    if not text:
        raise bad_request(f"{what}不能为空")
    if len(text) > TEXT_CHARS:
        raise bad_request(f"{what}最多{TEXT_CHARS}个字（现在{len(text)}个字）")
    return text


# -- middlewares ----------------------------------------------------------------------------
PUBLIC = {"/login", "/static/console.js"}


@web.middleware
async def auth_and_csrf(request: web.Request, handler):
    if request.path in PUBLIC or request.path.startswith(PUBLIC_PREFIXES):
        return await handler(request)  # the login page and the shoppers' web chat
    session = await get_session(request)
    if session.get("agent") and not await request.app[SERVICES].agents.exists(session["agent"]):
        session.invalidate()  # the agent was removed: whatever session is left ends here
    if not session.get("agent"):
        if request.path.startswith(("/api/", "/ws")):
            return json_error(401, "登录已失效，请重新登录")
        raise web.HTTPFound("/login")
    if request.method == "POST":
        sent = request.headers.get("X-CSRF-Token")
        if not sent or not secrets.compare_digest(sent, session.get("csrf", "")):
            return json_error(403, "页面已过期，请刷新后重试")
    return await handler(request)


# aiohttp's own error bodies ("404: Not Found") are English: people get these instead.
STATUS_TEXTS = {400: "请求格式不正确", 404: "找不到这个页面", 405: "不支持这种请求方式", 413: "内容太大"}


def chinese_error(request: web.Request, error: web.HTTPException) -> Optional[web.Response]:
    """The Chinese stand-in for an error aiohttp raised with its default English body, if any."""
    if error.status not in STATUS_TEXTS or error.text != f"{error.status}: {error.reason}":
        return None
    message = STATUS_TEXTS[error.status]
    if request.path.startswith(("/api/", "/ws")):
        return json_error(error.status, message)
    return web.Response(status=error.status, content_type="text/html", text=(
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{message}</title></head>'
        f'<body><main><h1>{message}</h1><p><a href="/">返回队列</a></p></main></body></html>'))


@web.middleware
async def errors(request: web.Request, handler):
    try:
        return await handler(request)
    except web.HTTPException as error:
        replacement = chinese_error(request, error)
        if replacement is None:
            raise
        return replacement
    except TicketError as error:  # e.g. a ticket claimed or resolved by someone else meanwhile
        logger.info("ticket transition refused: %s", error)
        return json_error(409, "工单状态已变化（可能已被其他客服接入、转交或解决），请刷新后再试")
    except AlertError as error:  # e.g. an alert resolved twice, or a non-safety alert confirmed
        logger.info("alert action refused: %s", error)
        return web.json_response({"error": "该预警当前的状态不允许这个操作", "detail": alert_error_detail(error)},
                                 status=409)
    except (RasaApiError, OrderSystemError, ConnectionError, OSError) as error:
        logger.exception("backend unavailable")
        return json_error(503, f"{BACKEND_NAMES.get(type(error).__name__, '后台服务')}暂时不可用，请稍后再试")
    except RedisError:  # the tickets' and sessions' store: the page keeps what was typed
        if not request.path.startswith("/api/"):
            raise
        logger.exception("Redis unavailable")
        return json_error(503, "工单数据库暂时不可用，请稍后再试（已输入的内容仍保留在页面上）")
    except Exception:  # the console's JSON API: a Chinese message, never aiohttp's English 500 page
        if not request.path.startswith("/api/"):
            raise
        logger.exception("console request failed: %s %s", request.method, request.path)
        return json_error(500, "服务器出错，请稍后再试（已输入的内容仍保留在页面上）")


BACKEND_NAMES = {"RasaApiError": "小保对话服务", "OrderSystemError": "订单系统"}


def alert_error_detail(error: Exception) -> str:
    """AlertError's reason (English, for the log) as supervisors read it."""
    message = str(error)
    if message.startswith("no alert"):
        return "没有这条预警"
    if "assigned to someone" in message:
        return "需要指派给一位客服"
    if "empty note" in message:
        return "备注不能为空"
    found = re.search(r"refused for alert \S+: (\w+)", message)
    if found:
        why = found.group(1)
        return f"预警当前状态：{STATUS_LABELS.get(why, why)}"
    return "请刷新后查看预警的最新状态"


# -- pages ----------------------------------------------------------------------------------
def render(request: web.Request, name: str, **context: Any) -> web.Response:
    html = request.app[TEMPLATES].get_template(name).render(**context)
    return web.Response(text=html, content_type="text/html", headers={
        "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'",
        "X-Frame-Options": "DENY"})


async def login_page(request: web.Request) -> web.Response:
    # The login form's CSRF token is a double-submit cookie (SameSite=Strict), not a session:
    # visitors who have not logged in create nothing in Redis.
    token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not SESSION_ID.match(token):
        token = secrets.token_urlsafe(32)
    response = render(request, "login.html", csrf=token, error=request.query.get("error"))
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, path="/login", httponly=True, samesite="Strict",
                        secure=request.app[CONFIG].secure_cookie or is_https(request))
    return response


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not secrets.compare_digest(str(form.get("csrf", "")), cookie):
        return json_error(403, "页面已过期，请刷新后重试")
    agents = request.app[SERVICES].agents
    name, ip = str(form.get("name", "")), client_ip(request)
    # The try is counted (per name, per IP, for everyone) before Argon2 runs, in one atomic step,
    # so parallel tries cannot slip past the limits; Argon2 runs in a thread, not on the loop.
    if not await agents.reserve_login(name, ip):
        return web.Response(status=429, text="登录尝试过多，请5分钟后再试。")
    if not await agents.verify(name, str(form.get("password", ""))):
        raise web.HTTPFound("/login?error=1")
    await agents.login_succeeded(name, ip)
    storage = request.app[SESSION_STORAGE]
    await storage.forget(await get_session(request))  # any earlier session of this browser ends
    session = await new_session(request)  # a fresh session id on login: no fixation
    session["agent"], session["csrf"] = name, secrets.token_urlsafe(24)
    raise web.HTTPFound("/")


async def logout(request: web.Request) -> web.Response:
    (await get_session(request)).invalidate()
    return web.json_response({"ok": True})


async def page_context(request: web.Request) -> Dict[str, Any]:
    """What every logged-in page needs: the agent, the CSRF token, and whether the nav shows the
    supervisors' links (the role as it is now in Redis)."""
    session = await get_session(request)
    agents = request.app[SERVICES].agents
    return {"agent": session["agent"], "agent_name": await agents.display_name(session["agent"]),
            "csrf": session["csrf"], "supervisor": await agents.is_supervisor(session["agent"])}


async def queue_page(request: web.Request) -> web.Response:
    return render(request, "queue.html", **await page_context(request))


async def ticket_page(request: web.Request) -> web.Response:
    ticket = await request.app[SERVICES].tickets.get(request.match_info["ticket_id"])
    if ticket is None:
        raise web.HTTPNotFound(text=NOT_FOUND_PAGE, content_type="text/html")
    return render(request, "ticket.html", **await page_context(request), ticket=ticket,
                  canned=console_texts()["canned"], reasons=return_reasons())


@lru_cache(maxsize=1)
def return_reasons() -> Dict[str, str]:
    """Return reasons and their Chinese names (knowledge/return_rules.yml), for the agent's return form."""
    rules = yaml.safe_load((KNOWLEDGE_DIR / "return_rules.yml").read_text(encoding="utf-8"))
    return dict(rules["reason_labels"])


# -- API ------------------------------------------------------------------------------------
NOT_FOUND_PAGE = ('<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>找不到工单</title></head>'
                  '<body><h1>找不到这个工单</h1><p><a href="/">返回队列</a></p></body></html>')


async def queue_snapshot(services: Services, agent: str) -> Dict[str, Any]:
    at, displays = now(), await services.agents.display_names()
    waiting = [ticket_view(t, at, displays) for t in await services.tickets.queue()]
    mine = [ticket_view(t, at, displays) for t in await services.tickets.assigned_to(agent)]
    return {"type": "queue", "waiting": waiting, "mine": mine}


async def api_queue(request: web.Request) -> web.Response:
    return web.json_response(await queue_snapshot(request.app[SERVICES], await current_agent(request)))


async def conversation(services: Services, ticket: Ticket, settings: Settings) -> Dict[str, Any]:
    transcript = transcript_from_tracker(await services.rasa.tracker(ticket.sender_id), ticket.id)
    orders, returns = [], []
    try:
        if ticket.customer:
            orders = [order_view(to_dict(o)) for o in await services.orders.orders_of(ticket.customer)]
            returns = [return_view(to_dict(r)) for r in await services.orders.returns_of(ticket.customer)]
        elif ticket.order_id:  # a guest: the order the bot verified for the ticket
            order = await services.orders.order(ticket.order_id)
            orders = [order_view(to_dict(order))] if order is not None else []
            returns = [return_view(to_dict(r)) for r in await services.orders.returns_of(order.customer_id)
                       if r.order_id == ticket.order_id] if order is not None else []
    except OrderSystemError:
        logger.warning("order system unavailable for ticket %s", ticket.id)
    displays = await services.agents.display_names()
    refunds = [{**r, "agent_name": displays.get(str(r.get("agent")), r.get("agent"))}
               for r in await refunds_of(services.redis, ticket.id)]
    return {"type": "conversation", "ticket": ticket_view(ticket, displays=displays),
            "evidence": evidence_view(ticket, settings), "transcript": transcript, "orders": orders,
            "returns": returns, "refunds": refunds}


async def load_ticket(request: web.Request) -> Ticket:
    ticket = await request.app[SERVICES].tickets.get(request.match_info["ticket_id"])
    if ticket is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "找不到这个工单（可能已被删除）"}, ensure_ascii=False),
                               content_type="application/json")
    return ticket


async def api_ticket(request: web.Request) -> web.Response:
    return web.json_response(await conversation(request.app[SERVICES], await load_ticket(request),
                                                request.app[CONFIG].settings))


async def photo_response(request: web.Request, path: Optional[Path]) -> web.StreamResponse:
    """A stored upload for a logged-in agent (a thumbnail with ?thumbnail=1)."""
    if path is None:
        raise web.HTTPNotFound(text="这张照片没有保存在本机")
    headers = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff",
               "Content-Security-Policy": "default-src 'none'"}
    if request.query.get("thumbnail"):
        small = await asyncio.to_thread(thumbnail, path)
        if small is not None:
            return web.Response(body=small, content_type="image/jpeg", headers=headers)
    return web.FileResponse(path, headers={**headers, "Content-Type": PHOTO_TYPES[path.suffix.lstrip(".")]})


async def api_photo(request: web.Request) -> web.StreamResponse:
    """One photo of a ticket's evidence pack (a thumbnail with ?thumbnail=1), for logged-in agents.
    Photos are addressed by their place in the pack, never by a path the request names."""
    ticket = await load_ticket(request)
    index = request.match_info["index"]
    photos = (ticket.evidence or {}).get("photos") or []
    if not index.isdigit() or int(index) >= len(photos):
        raise web.HTTPNotFound(text="没有这张照片")
    return await photo_response(request, photo_file(request.app[CONFIG].settings, photos[int(index)]))


async def api_chat_photo(request: web.Request) -> web.StreamResponse:
    """One photo the shopper sent in the ticket's conversation, by its place among that
    conversation's photos (as the transcript numbers them). Only uploads of ours are served."""
    ticket = await load_ticket(request)
    index = request.match_info["index"]
    if not index.isdigit() or len(index) > 4:
        raise web.HTTPNotFound(text="没有这张照片")
    photos = conversation_photos(await request.app[SERVICES].rasa.tracker(ticket.sender_id))
    if int(index) >= len(photos):
        raise web.HTTPNotFound(text="没有这张照片")
    return await photo_response(request, photo_file(request.app[CONFIG].settings, photos[int(index)]))


async def api_claim(request: web.Request) -> web.Response:
    services, ticket = request.app[SERVICES], await load_ticket(request)
    agent = await current_agent(request)
    if not await services.tickets.claim(ticket.id, agent):
        current = await services.tickets.get(ticket.id)
        if current is not None and current.status == CLAIMED and current.assignee == agent:
            return json_error(409, "您已接入这个会话")
        if current is not None and current.status == "resolved":
            return json_error(409, "该会话已解决，无需接入")
        return json_error(409, "该会话已被其他客服接入")
    await services.rasa.pause(ticket.sender_id)  # the bot may have resumed after an SLA notice
    await tell_claimed(services, ticket, agent)
    return web.json_response({"ok": True})


async def tell_claimed(services: Services, ticket: Ticket, agent: str) -> None:
    """The shopper learns who took the conversation (contract A: handoff_status claimed)."""
    name = await services.agents.display_name(agent)
    await services.rasa.send_bot_message(
        ticket.sender_id, console_texts()["claimed"].format(agent=name),
        metadata={"sent_by": "system", "ticket": ticket.id, "agent": agent, "agent_name": name},
        custom={"type": "handoff_status", "state": "claimed", "ticket_id": ticket.id, "agent_name": name})


async def owned(request: web.Request) -> Ticket:
    ticket, agent = await load_ticket(request), await current_agent(request)
    if ticket.status != "claimed" or ticket.assignee != agent:
        raise web.HTTPConflict(text=json.dumps({"error": "请先接入这个会话（它不在您名下）"}, ensure_ascii=False),
                               content_type="application/json")
    return ticket


async def api_reply(request: web.Request) -> web.Response:
    """The agent's reply reaches the shopper under their display name (agent_prefix), never
    their login; the login stays in the event's metadata for the console and the records."""
    ticket = await owned(request)
    text = text_of(await json_body(request), "text", "回复")
    services, agent = request.app[SERVICES], await current_agent(request)
    name = await services.agents.display_name(agent)
    prefix = console_texts()["agent_prefix"].format(agent=name)
    await services.rasa.send_bot_message(
        ticket.sender_id, prefix + text,
        metadata={"sent_by": "agent", "agent": agent, "agent_name": name, "ticket": ticket.id})
    return web.json_response({"ok": True})


async def api_note(request: web.Request) -> web.Response:
    """An internal note, on a ticket in any state. Every failure is a JSON error in Chinese."""
    ticket = await load_ticket(request)
    text = text_of(await json_body(request), "text", "备注")
    noted = await request.app[SERVICES].tickets.add_note(ticket.id, await current_agent(request), text)
    return web.json_response({"ok": True, "notes": len(noted.notes)})


async def api_release(request: web.Request) -> web.Response:
    ticket = await owned(request)
    await request.app[SERVICES].tickets.release(ticket.id, await current_agent(request))
    return web.json_response({"ok": True})


async def api_transfer(request: web.Request) -> web.Response:
    """To a colleague whose console is open (agents.Presence); the shopper is told who took over."""
    ticket, services = await owned(request), request.app[SERVICES]
    to_agent = str((await json_body(request)).get("to", "")).strip()
    agent = await current_agent(request)
    if to_agent not in await services.agents.names() or to_agent == agent:
        return json_error(400, "没有这位客服，请从在线客服列表中选择")
    if to_agent not in await services.presence.online([to_agent], time.time()):
        return json_error(400, "这位客服当前不在线，无法转交，请从在线客服列表中选择")
    await services.tickets.transfer(ticket.id, agent, to_agent)
    await tell_claimed(services, ticket, to_agent)
    return web.json_response({"ok": True})


async def api_resolve(request: web.Request) -> web.Response:
    """Resolve and hand back: the bot resumes and the shopper is asked for a rating, once. The web
    chat gets contract A's handoff_status ended, then the survey; other channels (WeChat shows no
    custom payloads) get the bot's closing and its rating options (the handed_back intent)."""
    ticket, services = await owned(request), request.app[SERVICES]
    await services.tickets.resolve(ticket.id, await current_agent(request))
    await services.rasa.resume(ticket.sender_id)
    if ticket.channel != "socketio":
        await services.rasa.trigger_intent(ticket.sender_id, "handed_back")
        return web.json_response({"ok": True})
    texts = console_texts()
    await services.rasa.send_bot_message(
        ticket.sender_id, texts["ended"], metadata={"sent_by": "system", "ticket": ticket.id},
        custom={"type": "handoff_status", "state": "ended", "ticket_id": ticket.id})
    await services.rasa.send_bot_message(
        ticket.sender_id, texts["survey"], metadata={"sent_by": "system", "ticket": ticket.id},
        custom={"type": "survey", "ticket_id": ticket.id})
    return web.json_response({"ok": True})


async def api_online_agents(request: web.Request) -> web.Response:
    """Colleagues with a console open: whom a ticket can be transferred to."""
    services, agent = request.app[SERVICES], await current_agent(request)
    displays = await services.agents.display_names()
    online = await services.presence.online([n for n in displays if n != agent], time.time())
    return web.json_response({"agents": [{"login": n, "name": displays[n]} for n in sorted(online)]})


async def api_agent_typing(request: web.Request) -> web.Response:
    """The agent is typing (or stopped): the shopper's web chat shows it (contract B,
    agent_typing). The page throttles; only the ticket's agent may."""
    ticket, services = await owned(request), request.app[SERVICES]
    typing = (await json_body(request)).get("typing") is True
    name = await services.agents.display_name(await current_agent(request))
    await services.emitter.to_shopper(ticket.sender_id, "agent_typing", {"typing": typing, "agent_name": name})
    return web.json_response({"ok": True})


async def count_conversations(redis: aioredis.Redis) -> int:
    return sum([1 async for _ in redis.scan_iter(match=CONVERSATION_KEY_PATTERN, count=500)])


async def api_dashboard(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    return web.json_response(await services.tickets.metrics(await count_conversations(services.redis)))


async def api_canned(request: web.Request) -> web.Response:
    return web.json_response(console_texts()["canned"])


async def wait_for_news(listener: Listener, reading: "asyncio.Task", timeout_s: float, *more: Listener) -> None:
    """A console WebSocket's pause: until one of its feeds has news, the page sent something or
    closed (`reading` ended), or timeout_s passed; then COALESCE_S more, so a burst of changes is
    sent once."""
    woken = [asyncio.create_task(each.wake.wait()) for each in (listener, *more)]
    try:
        await asyncio.wait({*woken, reading}, timeout=max(timeout_s, 0), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in woken:
            task.cancel()
    await asyncio.sleep(COALESCE_S)


PRESENCE_REFRESH_S = 15.0  # an open console renews its agent's online mark this often (TTL 45 s)


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """Pushes the queue when a ticket changes (the feed), and the watched conversation: at once
    when its ticket changes, and when its transcript changes (re-read every poll interval). The
    whole queue is also re-sent every refresh interval, in case a change was missed. The
    watched shopper's online and typing state is pushed when it changes (the Rasa process
    publishes on xb:presence; the keys' TTLs are read every poll). While the socket is open its
    agent counts as online (transfers go only to them)."""
    if not origin_allowed(request):  # a page of another site, riding on the agent's cookie
        return json_error(403, "不允许从其他网站连接")
    agent = await current_agent(request)
    services, config = request.app[SERVICES], request.app[CONFIG]
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    listener, shoppers = services.feed.listen(), services.shopper_feed.listen()
    watched: Dict[str, Any] = {"id": None, "seen": None, "sender": None, "presence": None}
    socket_id = secrets.token_hex(8)

    async def reader() -> None:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                try:
                    watched["id"] = json.loads(message.data).get("watch")
                except (ValueError, AttributeError):
                    continue
                watched["seen"] = watched["sender"] = watched["presence"] = None
                listener.notify(watched["id"])

    async def send_conversation() -> None:
        ticket = await services.tickets.get(watched["id"])
        if ticket is None:
            return
        watched["sender"] = ticket.sender_id
        view = await conversation(services, ticket, config.settings)
        digest = json.dumps([view["transcript"], view["ticket"]["status"], view["ticket"]["assignee"],
                             view["ticket"]["notes"], view["refunds"]], ensure_ascii=False)
        if digest != watched["seen"]:
            watched["seen"] = digest
            await ws.send_json(view)

    async def send_presence() -> None:
        state = await shopper_presence(services.redis, watched["sender"])
        if state != watched["presence"]:
            watched["presence"] = state
            await ws.send_json({"type": "presence", "ticket": watched["id"], **state})

    loop = asyncio.get_running_loop()
    reading = asyncio.create_task(reader())
    next_refresh = next_poll = next_seen = loop.time()
    try:
        while not ws.closed and not reading.done():
            changed, everything = listener.take()
            moved, _ = shoppers.take()
            at = loop.time()
            if at >= next_seen:
                await services.presence.seen(agent, socket_id, time.time())
                next_seen = at + PRESENCE_REFRESH_S
            if changed or everything or at >= next_refresh:
                await ws.send_json(await queue_snapshot(services, agent))
                next_refresh = at + config.refresh_interval_s
            if watched["id"] and (everything or watched["id"] in changed or at >= next_poll):
                await send_conversation()
            if watched["sender"] and (watched["sender"] in moved or at >= next_poll):
                await send_presence()
            if at >= next_poll:
                next_poll = at + config.poll_interval_s
            wake_at = min(next_refresh, next_poll, next_seen) if watched["id"] else min(next_refresh, next_seen)
            await wait_for_news(listener, reading, wake_at - loop.time(), shoppers)
    except (ConnectionResetError, RasaApiError):
        pass
    finally:
        reading.cancel()
        services.feed.forget(listener)
        services.shopper_feed.forget(shoppers)
        try:
            await services.presence.gone(agent, socket_id)
        except (RedisError, OSError):  # the mark lapses on its own
            logger.warning("could not clear an agent's online mark", exc_info=True)
    return ws


# -- risk alerts (风险预警, supervisors only) --------------------------------------------------
SEVERITY_LABELS = {"critical": "严重", "urgent": "紧急", "high": "高", "normal": "一般"}  # most severe first
STATUS_LABELS = {"open": "待处理", "acknowledged": "已确认收到", "resolved": "已处理"}
STATUS_FILTERS = {LIVE: "未处理（待处理与已确认收到）", **STATUS_LABELS}
ALERT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")
FILTER_CHARS = 64
NOTE_CHARS = 2000
SUPERVISORS_ONLY = "仅主管可以查看风险预警"
FORBIDDEN_PAGE = ('<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>无权访问</title></head>'
                  f'<body><h1>无权访问</h1><p>{SUPERVISORS_ONLY}。如需权限，请联系管理员。</p>'
                  '<p><a href="/">返回队列</a></p></body></html>')
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def supervisors_only(handler: Handler) -> Handler:
    """Risk alerts are for supervisors. The role is read from Redis on every request, so a demoted
    supervisor loses access at once; agents get 403 (JSON on the API and the WebSocket)."""

    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        if await request.app[SERVICES].agents.is_supervisor(await current_agent(request)):
            return await handler(request)
        if request.path.startswith(("/api/", "/ws")):
            return json_error(403, SUPERVISORS_ONLY)
        return web.Response(status=403, text=FORBIDDEN_PAGE, content_type="text/html",
                            headers={"Content-Security-Policy": "default-src 'none'", "X-Frame-Options": "DENY"})

    return checked


@lru_cache(maxsize=1)
def risk_labels() -> Dict[str, Dict[str, str]]:
    """The Chinese names of kinds, dimensions and reasons: the detector's (knowledge/risk_thresholds.yml)."""
    return {group: dict(names) for group, names in load_thresholds().labels.items()}


def alert_labels(alert: Alert) -> Dict[str, str]:
    labels = risk_labels()
    return {"severity_label": SEVERITY_LABELS.get(alert.severity, alert.severity),
            "status_label": STATUS_LABELS.get(alert.status, alert.status),
            "kind_label": labels.get("kinds", {}).get(alert.kind, alert.kind),
            "dimension_label": labels.get("dimensions", {}).get(alert.dimension, alert.dimension),
            "reason_label": labels.get("reasons", {}).get(alert.reason, alert.reason)}


def alert_summary(alert: Alert) -> Dict[str, Any]:
    """An alert as the list shows it: without its samples, series, notes and history (the detail
    has those), so that the pushed list stays small."""
    view = {k: v for k, v in asdict(alert).items() if k not in ("samples", "series", "notes", "history")}
    view.update(alert_labels(alert), samples_count=len(alert.samples), notes_count=len(alert.notes))
    return view


def alert_detail(alert: Alert) -> Dict[str, Any]:
    return {**asdict(alert), **alert_labels(alert)}


def alert_filters(query: Any) -> Dict[str, str]:
    """The list's filters from the query string; unknown severities and statuses are refused."""
    filters = {}
    for name in ("merchant", "category", "severity", "status"):
        value = str(query.get(name, "")).strip()
        if not value:
            continue
        known = {"severity": SEVERITY_LABELS, "status": STATUS_FILTERS}.get(name)
        if len(value) > FILTER_CHARS or (known is not None and value not in known):
            raise web.HTTPBadRequest(text=json.dumps({"error": f"筛选条件 {name} 无效"}, ensure_ascii=False),
                                     content_type="application/json")
        filters[name] = value
    return filters


async def risk_snapshot(services: Services) -> Dict[str, Any]:
    return {"type": "alerts", "alerts": [alert_summary(a) for a in await services.alerts.list()]}


async def load_alert(request: web.Request) -> Alert:
    alert_id = request.match_info["alert_id"]
    alert = await request.app[SERVICES].alerts.get(alert_id) if ALERT_ID.match(alert_id) else None
    if alert is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "没有这条预警"}, ensure_ascii=False),
                               content_type="application/json")
    return alert


async def text_field(request: web.Request, name: str, required: bool) -> str:
    try:
        body = await request.json() if request.can_read_body else {}
    except ValueError:
        body = None
    text = str(body.get(name, "") if isinstance(body, dict) else "").strip()
    if (required and not text) or len(text) > NOTE_CHARS:
        raise web.HTTPBadRequest(text=json.dumps({"error": f"内容需要{1 if required else 0}到{NOTE_CHARS}个字"},
                                                 ensure_ascii=False), content_type="application/json")
    return text


def alert_done(alert: Alert, **extra: Any) -> web.Response:
    return web.json_response({"ok": True, "alert": alert_detail(alert), **extra})


@supervisors_only
async def risk_page(request: web.Request) -> web.Response:
    return render(request, "risk.html", **await page_context(request),
                  agents=list((await request.app[SERVICES].agents.display_names()).items()),
                  severities=SEVERITY_LABELS, statuses=STATUS_FILTERS)


@supervisors_only
async def api_risk_alerts(request: web.Request) -> web.Response:
    alerts = await request.app[SERVICES].alerts.list(**alert_filters(request.query))
    return web.json_response({"alerts": [alert_summary(a) for a in alerts]})


@supervisors_only
async def api_risk_alert(request: web.Request) -> web.Response:
    return web.json_response(alert_detail(await load_alert(request)))


@supervisors_only
async def api_risk_acknowledge(request: web.Request) -> web.Response:
    alert = await load_alert(request)
    return alert_done(await request.app[SERVICES].alerts.acknowledge(alert.id, await current_agent(request)))


@supervisors_only
async def api_risk_assign(request: web.Request) -> web.Response:
    alert, services = await load_alert(request), request.app[SERVICES]
    to = await text_field(request, "to", required=True)
    if to not in await services.agents.names():
        return json_error(400, "没有这位客服")
    return alert_done(await services.alerts.assign(alert.id, await current_agent(request), to))


@supervisors_only
async def api_risk_resolve(request: web.Request) -> web.Response:
    alert = await load_alert(request)
    note = await text_field(request, "note", required=False)
    return alert_done(await request.app[SERVICES].alerts.resolve(alert.id, await current_agent(request), note))


@supervisors_only
async def api_risk_note(request: web.Request) -> web.Response:
    alert = await load_alert(request)
    text = await text_field(request, "text", required=True)
    return alert_done(await request.app[SERVICES].alerts.add_note(alert.id, await current_agent(request), text))


def warning_message(summary: Dict[str, Any]) -> str:
    """The confirmation's result in one Chinese sentence, for the supervisor who confirmed."""
    if summary.get("note"):  # nobody could be warned (e.g. the alert names no SKU): why
        return str(summary["note"])
    parts = [f"已告知 {summary.get('sent', 0)} 位已购买顾客"]
    for key, label in (("already", "此前已告知"), ("unreachable", "无法联系"), ("failed", "发送失败")):
        if summary.get(key):
            parts.append(f"{label} {summary[key]} 位")
    return "，".join(parts) + "。"


@supervisors_only
async def api_risk_confirm(request: web.Request) -> web.Response:
    """Staff confirm a safety alert: the shoppers who bought the SKU are warned (主动告知), each
    once per alert (bot.risk.warnings), and the summary is kept on the alert."""
    alert, services = await load_alert(request), request.app[SERVICES]
    if not alert.safety:
        return json_error(409, "只有安全事件预警需要确认并告知顾客")
    by = await current_agent(request)
    confirmed = await services.alerts.confirm(alert.id, by)
    # Confirming again (e.g. after the order system was down) warns only those not yet warned.
    summary = await services.warnings.warn_for_alert(confirmed, by)
    recorded = await services.alerts.record_warning(alert.id, summary)
    return alert_done(recorded, summary=summary, message=warning_message(summary))


@supervisors_only
async def risk_websocket(request: web.Request) -> web.WebSocketResponse:
    """Pushes the whole alert list (the page filters it) when an alert changes anywhere (the
    alerts' pub/sub channel, one subscription per process), and every refresh interval. The role
    is checked again before each push: a demoted supervisor's socket is closed (code 4403)."""
    if not origin_allowed(request):
        return json_error(403, "不允许从其他网站连接")
    agent = await current_agent(request)
    services, config = request.app[SERVICES], request.app[CONFIG]
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    listener = services.risk_feed.listen()

    async def reader() -> None:
        async for _ in ws:  # the page sends nothing; this notices the close
            pass

    loop = asyncio.get_running_loop()
    reading = asyncio.create_task(reader())
    next_refresh = loop.time()
    try:
        while not ws.closed and not reading.done():
            changed, everything = listener.take()
            if changed or everything or loop.time() >= next_refresh:
                if not await services.agents.is_supervisor(agent):
                    await ws.close(code=4403, message=SUPERVISORS_ONLY.encode())
                    break
                await ws.send_json(await risk_snapshot(services))
                next_refresh = loop.time() + config.refresh_interval_s
            await wait_for_news(listener, reading, next_refresh - loop.time())
    except ConnectionResetError:
        pass
    except RedisError:  # the page reconnects and gets the list again
        logger.warning("risk alerts unavailable for a console WebSocket", exc_info=True)
    finally:
        reading.cancel()
        services.risk_feed.forget(listener)
    return ws


# -- background: SLA --------------------------------------------------------------------------
async def notify_overdue(services: Services) -> int:
    """One SLA pass: tells the shoppers nobody claimed in time their ticket number and real place
    in the queue, asks for a number to call back (the bot stores it on the ticket), and lets the
    bot help. Every web-app replica runs it; the ticket's compare-and-set decides which replica
    tells the shopper, so they are told once. Returns how many were told here."""
    told = 0
    for ticket in await services.tickets.overdue():
        if await services.tickets.mark_sla_notified(ticket.id) is None:
            continue  # another replica told them, or an agent claimed the ticket meanwhile
        position = await services.tickets.position(ticket.id) or 1
        text = console_texts()["sla_missed"].format(ticket_id=ticket.id, position=position)
        status = queued_payload(ticket, position, wait_minutes(position))  # the widget's 排队中（第N位）
        try:
            await services.rasa.resume(ticket.sender_id)
            await services.rasa.send_bot_message(ticket.sender_id, text, metadata={"sent_by": "system"}, custom=status)
        except Exception:
            await services.tickets.unmark_sla_notified(ticket.id)  # not told: a replica tries again
            raise
        told += 1
        current = await services.tickets.get(ticket.id)
        if current is not None and current.status == CLAIMED:
            await services.rasa.pause(ticket.sender_id)  # claimed while we resumed the bot
    return told


async def watch_sla(app: web.Application) -> None:
    services, config = app[SERVICES], app[CONFIG]
    while True:
        try:
            await notify_overdue(services)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("SLA check failed; retrying")
        await asyncio.sleep(config.sla_interval_s)


# -- background: the risk-event consumer ------------------------------------------------------
async def run_risk_worker(app: web.Application, stop: asyncio.Event) -> None:
    """Every console process is a member of the detectors' consumer group (bot.risk.worker): the
    group shares the events out, so each is counted once however many replicas run. The worker
    rides out Redis outages itself; anything else is logged and the worker restarted. It is
    cancelled at shutdown: an entry not yet acknowledged stays pending and is claimed again by
    another consumer, and the worker counts each event id once."""
    services, config = app[SERVICES], app[CONFIG]
    name = consumer_name()
    while not stop.is_set():
        try:  # thresholds read here: a broken knowledge/risk_thresholds.yml is logged, the console still serves
            await RiskWorker(services.redis, services.alerts, load_thresholds(), name=name,
                             prefix=config.risk_prefix).run(stop)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("risk worker failed; restarting")
            try:
                await asyncio.wait_for(stop.wait(), timeout=5.0)
            except asyncio.TimeoutError:
                pass


# -- app ------------------------------------------------------------------------------------
SHUTDOWN_WAIT_S = 3.0


async def resources(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    redis = async_redis(config.redis_url, socket_timeout=5, socket_connect_timeout=5)
    tickets = TicketStore(redis)
    feed = TicketFeed(redis, tickets.events_channel)
    alerts = AlertStore(redis, prefix=config.risk_prefix)
    risk_feed = TicketFeed(redis, alerts.channel)
    rasa, orders = RasaApi(config.rasa_url, config.rasa_token), order_system_for(config.settings, redis)
    warnings = shopper_warnings_for(redis, orders, rasa, prefix=config.risk_prefix)  # WeChat from WECHAT_* if set
    shopper_feed, emitter = TicketFeed(redis, PRESENCE_CHANNEL, key="conversation"), JsonEmitter(config.redis_url)
    app[SERVICES] = Services(redis, tickets, AgentStore(redis, throttle_prefix=config.login_throttle_prefix), rasa,
                             orders, feed, alerts, risk_feed, warnings, Presence(redis), shopper_feed, emitter)
    try:
        await tickets.upgrade()  # tickets of the earlier layout: converted once, here
    except (RedisError, OSError):
        logger.warning("could not check the tickets' layout at start; they are converted when read")
    stopping = asyncio.Event()
    worker = asyncio.create_task(run_risk_worker(app, stopping))
    tasks = [asyncio.create_task(feed.run()), asyncio.create_task(risk_feed.run()),
             asyncio.create_task(shopper_feed.run()), asyncio.create_task(watch_sla(app))]
    yield
    # The worker is asked to stop (it finishes the entry in hand within a blocking read's second)
    # rather than cancelled mid-command: redis-py 4.6 can hang or garble a connection whose
    # command is cancelled half-way (redis/redis-py#2665). Whatever is left is cancelled, and
    # shutdown never waits on it longer than SHUTDOWN_WAIT_S.
    stopping.set()
    await asyncio.wait([worker], timeout=SHUTDOWN_WAIT_S)
    tasks.append(worker)
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks, timeout=SHUTDOWN_WAIT_S)
    await app[SERVICES].rasa.close()
    await emitter.close()
    await warnings.close()  # the WeChat API client shopper_warnings_for made from WECHAT_*, if any
    try:
        await asyncio.wait_for(redis.aclose() if hasattr(redis, "aclose") else redis.close(), SHUTDOWN_WAIT_S)
    except asyncio.TimeoutError:
        logger.warning("the console's Redis connections did not close within %.0f s", SHUTDOWN_WAIT_S)


def create_app(config: ConsoleConfig) -> web.Application:
    app = web.Application(middlewares=[errors])
    app[SESSION_STORAGE] = storage = ServerSessionStorage(app, config)
    setup_session(app, storage)
    app.middlewares.append(auth_and_csrf)
    app[CONFIG] = config
    app[TEMPLATES] = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    app.cleanup_ctx.append(resources)
    app.add_routes([
        web.get("/login", login_page), web.post("/login", login), web.post("/logout", logout),
        web.get("/", queue_page), web.get("/tickets/{ticket_id}", ticket_page),
        web.get("/api/queue", api_queue), web.get("/api/dashboard", api_dashboard), web.get("/api/canned", api_canned),
        web.get("/api/tickets/{ticket_id}", api_ticket), web.get("/api/tickets/{ticket_id}/photos/{index}", api_photo),
        web.post("/api/tickets/{ticket_id}/claim", api_claim), web.post("/api/tickets/{ticket_id}/release", api_release),
        web.post("/api/tickets/{ticket_id}/transfer", api_transfer), web.post("/api/tickets/{ticket_id}/reply", api_reply),
        web.post("/api/tickets/{ticket_id}/note", api_note), web.post("/api/tickets/{ticket_id}/resolve", api_resolve),
        web.get("/api/tickets/{ticket_id}/chat-photos/{index}", api_chat_photo),
        web.post("/api/tickets/{ticket_id}/typing", api_agent_typing),
        *order_actions.routes(),
        web.get("/api/agents/online", api_online_agents), *search.routes(),
        web.get("/ws", websocket), web.static("/static", HERE / "static"),
        web.get("/risk", risk_page), web.get("/api/risk/alerts", api_risk_alerts),
        web.get("/api/risk/alerts/{alert_id}", api_risk_alert),
        web.post("/api/risk/alerts/{alert_id}/acknowledge", api_risk_acknowledge),
        web.post("/api/risk/alerts/{alert_id}/assign", api_risk_assign),
        web.post("/api/risk/alerts/{alert_id}/resolve", api_risk_resolve),
        web.post("/api/risk/alerts/{alert_id}/note", api_risk_note),
        web.post("/api/risk/alerts/{alert_id}/confirm", api_risk_confirm),
        web.get("/ws/risk", risk_websocket),
    ])
    setup_webchat(app, SERVICES, CONFIG)
    setup_regulators(app)
    return app
