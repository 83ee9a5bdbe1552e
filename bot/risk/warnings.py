"""Proactive safety warnings (主动告知): when staff confirm a safety alert, every shopper who bought
the SKU is told in their own channel what to do now, exactly once per alert, and each delivery is
recorded.

Who: the distinct customers of `OrderSystem.orders_with_sku(alert.sku)`. Where: the conversations
they were last seen in as verified customers (bot.risk.contacts), most recent first; the first one
that takes the message is used, so nobody is warned twice over two channels. Customers with no
such conversation are recorded as unreachable, for staff to reach another way.
How, per conversation:
- web chat and REST: a bot message appended through Rasa's HTTP API (output channel `latest`)
  with metadata {"sent_by": "system", "risk_alert": <alert id>}: it is in the transcript even when
  the shopper is offline;
- WeChat: a subscribe message (订阅消息, subscribeMessage.send) when a template id is configured
  (WECHAT_SAFETY_TEMPLATE_ID). It needs no open chat, only the shopper's earlier consent to that
  template (43101 without it). Otherwise, or without consent, a customer-service message, which
  WeChat allows only within 48 h of the shopper's last message: 45015 / 45047 make the shopper
  unreachable there, not a failure. What went out over WeChat is also added to the Rasa transcript
  (not delivered again), so agents see it.
https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/sendMessage.html

Exactly once: before sending, the (alert, customer) pair is claimed in Redis by one atomic script,
so two supervisors confirming at once on two replicas send one message. A sent warning keeps its
claim for good; a failed or unreachable one gives it back, so confirming again retries only those.
A claim whose sender died is taken over after CLAIM_STALE_S. A send that timed out may still have
arrived, but counts as failed, so a retry can repeat it: the one case of a possible second message.

Records, per alert, under the prefix ("xb:risk:"), kept RECORD_TTL_DAYS (电子商务法 第三十一条):
  warning-claims:<alert id>      hash customer id -> "sent" | "pending:<unix s>:<owner>"
  warning-deliveries:<alert id>  hash customer id -> JSON {"customer_id", "status", "channel",
                                 "conversation_id", "product", "at", "by", "attempts", "tried"}
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import re
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import redis.asyncio as aioredis
import yaml

from bot.orders.client import OrderSystem
from bot.orders.models import SHANGHAI, Order
from bot.paths import KNOWLEDGE_DIR
from bot.rasa_api import RasaApi, RasaApiError
from bot.risk.contacts import CONTACT_TTL_DAYS, WECHAT, ContactBook
from bot.webchat.conversation_ids import openid_of

logger = logging.getLogger(__name__)

WARNINGS_FILE = KNOWLEDGE_DIR / "risk_warnings.yml"
SENT, ALREADY, UNREACHABLE, FAILED = "sent", "already", "unreachable", "failed"
RECORD_TTL_DAYS = 1096  # as long as the rights events themselves (three years)
CLAIM_STALE_S = 600  # far longer than any one send (Rasa 10 s, WeChat 5 s with retries)
SEND_CONCURRENCY = 8
SUBSCRIBE_REFUSED = 43101  # the shopper has not (or no longer) agreed to this template
WINDOW_CLOSED, QUOTA_USED_UP = 45015, 45047
THING_CHARS = 20  # WeChat's limit for a template's thing fields

# KEYS[1] claims hash. ARGV: customer, now (unix s), stale after (s), our token, ttl (s).
_CLAIM = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  if current == 'sent' then return 0 end
  local since = tonumber(string.match(current, '^pending:([%d%.]+):'))
  if since and tonumber(ARGV[2]) - since < tonumber(ARGV[3]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""

# KEYS[1] claims, KEYS[2] deliveries. ARGV: customer, our token, status, record JSON, ttl (s).
# A sent warning keeps its claim for good; any other outcome gives back our claim (only ours).
_FINISH = """
if ARGV[3] == 'sent' then
  redis.call('HSET', KEYS[1], ARGV[1], 'sent')
elseif redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
local previous = redis.call('HGET', KEYS[2], ARGV[1])
local attempts = 1 + (previous and (cjson.decode(previous)['attempts'] or 0) or 0)
-- the record as sent, with "attempts" added (re-encoding it would turn [] into {})
redis.call('HSET', KEYS[2], ARGV[1], string.sub(ARGV[4], 1, -2) .. ',"attempts":' .. attempts .. '}')
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return 1
"""


@dataclass(frozen=True)
class Risk:
    match: Tuple[str, ...]
    label: str
    short: str
    steps: Tuple[str, ...]


@dataclass(frozen=True)
class WarningTexts:
    message: str
    common_steps: Tuple[str, ...]
    risks: Tuple[Risk, ...]
    default: Risk
    page: str
    fields: Dict[str, str]
    notes: Dict[str, str]  # for staff: why nobody was warned


def _risk(data: Mapping[str, Any]) -> Risk:
    return Risk(tuple(str(m).lower() for m in data.get("match", ())), data["label"], data["short"],
                tuple(data["steps"]))


def load_warning_texts(path: Optional[Path] = None) -> WarningTexts:
    data = yaml.safe_load((path or WARNINGS_FILE).read_text(encoding="utf-8"))
    return WarningTexts(
        message=data["message"], common_steps=tuple(data.get("common_steps", ())),
        risks=tuple(_risk(r) for r in data["risks"].values()), default=_risk(data["default"]),
        page=data["subscribe"]["page"], fields=dict(data["subscribe"]["fields"]), notes=dict(data["staff_notes"]),
    )


def risk_of(texts: WarningTexts, reason: str) -> Risk:
    """The risk an alert's reason names: an ASCII word starting with one of its words (fire,
    electric_shock), or a Chinese word anywhere in it (起火); otherwise the default."""
    reason = (reason or "").lower()
    words = re.findall(r"[a-z]+", reason)
    for risk in texts.risks:
        for keyword in risk.match:
            if keyword.isascii() and any(w.startswith(keyword) for w in words):
                return risk
            if not keyword.isascii() and keyword in reason:
                return risk
    return texts.default


def warning_text(texts: WarningTexts, product: str, reason: str, bought_on: Optional[dt.date] = None) -> str:
    """The chat message: which product, what the risk is, and what to do now."""
    risk = risk_of(texts, reason)
    steps = "\n".join(f"{n}. {step}" for n, step in enumerate(risk.steps + texts.common_steps, 1))
    bought = f"于{bought_on.month}月{bought_on.day}日" if bought_on else ""
    return texts.message.format(product=product, bought=bought, risk=risk.label, steps=steps)


def subscribe_fields(texts: WarningTexts, product: str, reason: str) -> Dict[str, str]:
    """The subscribe message's template fields, each cut to WeChat's THING_CHARS."""
    short = risk_of(texts, reason).short
    return {name: value.format(product=product, short=short)[:THING_CHARS] for name, value in texts.fields.items()}


def purchase_of(orders: Sequence[Order], sku: str) -> Tuple[str, Optional[dt.date]]:
    """(item name, order date) of the customer's most recent order of the SKU."""
    latest = max(orders, key=lambda o: o.created_at)
    item = next(i for i in latest.items if i.sku == sku)
    return item.name, latest.created_at.astimezone(SHANGHAI).date()


def buyers_of(orders: Sequence[Order], sku: str) -> Dict[str, List[Order]]:
    """customer id -> their orders with an item of the SKU."""
    found: Dict[str, List[Order]] = {}
    for order in orders:
        if order.customer_id and any(i.sku == sku for i in order.items):
            found.setdefault(order.customer_id, []).append(order)
    return found


@dataclass
class Attempt:
    status: str
    channel: Optional[str] = None
    conversation_id: Optional[str] = None
    error: str = ""


class ShopperWarnings:
    def __init__(self, redis: aioredis.Redis, orders: OrderSystem, rasa: RasaApi, wechat=None,
                 prefix: str = "xb:risk:", *, template_id: Optional[str] = None,
                 texts: Optional[WarningTexts] = None, contacts: Optional[ContactBook] = None,
                 record_ttl_days: float = RECORD_TTL_DAYS, claim_stale_s: float = CLAIM_STALE_S) -> None:
        self._redis, self._orders, self._rasa, self._wechat = redis, orders, rasa, wechat
        self._prefix = prefix
        self._template_id = template_id or None
        self._texts = texts or load_warning_texts()
        self._contacts = contacts or ContactBook(redis, prefix=prefix)
        self._ttl_s = int(record_ttl_days * 86400)
        self._stale_s = claim_stale_s
        self._claim = redis.register_script(_CLAIM)
        self._finish = redis.register_script(_FINISH)

    async def close(self) -> None:
        """Closes the WeChat client (the one shopper_warnings_for made); Rasa's belongs to the caller."""
        if self._wechat is not None:
            await self._wechat.close()

    def _keys(self, alert_id: str) -> List[str]:
        return [f"{self._prefix}warning-claims:{alert_id}", f"{self._prefix}warning-deliveries:{alert_id}"]

    async def warn_for_alert(self, alert, by: str) -> Dict[str, Any]:
        """Warns every buyer of `alert.sku` not yet warned about this alert. Only a confirmed safety
        alert with a SKU warns anyone. An order system that cannot be reached raises
        (OrderSystemError) before anything is sent, so confirming again is safe."""
        summary: Dict[str, Any] = {SENT: 0, ALREADY: 0, UNREACHABLE: 0, FAILED: 0, "buyers": 0, "by": by,
                                   "at": dt.datetime.now(SHANGHAI).isoformat()}
        refusal = _refusal(self._texts, alert)
        if refusal:
            return {**summary, "note": refusal}
        buyers = buyers_of(await self._orders.orders_with_sku(alert.sku), alert.sku)
        summary["buyers"] = len(buyers)
        limit = asyncio.Semaphore(SEND_CONCURRENCY)

        async def one(customer: str, orders: List[Order]) -> str:
            async with limit:
                return await self._warn_one(alert, customer, orders, by)

        for outcome in await asyncio.gather(*(one(c, o) for c, o in buyers.items())):
            summary[outcome] += 1
        if not buyers:
            summary["note"] = self._texts.notes["no_buyers"]
        return summary

    async def deliveries(self, alert_id: str) -> List[Dict[str, Any]]:
        """Every buyer's latest delivery record for the alert, by customer id."""
        stored = await self._redis.hgetall(self._keys(alert_id)[1])
        return sorted((json.loads(v) for v in stored.values()), key=lambda r: r["customer_id"])

    async def _warn_one(self, alert, customer: str, orders: List[Order], by: str) -> str:
        token = f"pending:{time.time():.3f}:{uuid.uuid4().hex}"
        claims = self._keys(alert.id)[0]
        if not await self._claim(keys=[claims], args=[customer, time.time(), self._stale_s, token, self._ttl_s]):
            return ALREADY
        product, bought_on = purchase_of(orders, alert.sku)
        try:
            attempt, tried = await self._deliver(alert, customer, product, bought_on)
        except Exception as error:  # noqa: BLE001 - whatever broke, the claim must be given back
            logger.exception("safety warning for alert %s could not be sent", alert.id)
            attempt, tried = Attempt(FAILED, error=repr(error)), []
        record = {"customer_id": customer, "status": attempt.status, "channel": attempt.channel,
                  "conversation_id": attempt.conversation_id, "product": product, "by": by,
                  "at": dt.datetime.now(SHANGHAI).isoformat(), "error": attempt.error,
                  "tried": [asdict(t) for t in tried]}
        await self._finish(keys=self._keys(alert.id),
                           args=[customer, token, attempt.status, json.dumps(record, ensure_ascii=False), self._ttl_s])
        return attempt.status

    async def _deliver(self, alert, customer: str, product: str, bought_on) -> Tuple[Attempt, List[Attempt]]:
        """The first conversation, most recent first, that takes the warning; else the outcome that
        matters most for a retry (failed before unreachable) and every conversation tried."""
        text = warning_text(self._texts, product, alert.reason, bought_on)
        tried: List[Attempt] = []
        for contact in await self._contacts.conversations_of(customer):
            attempt = await self._send(alert, contact["conversation_id"], contact["channel"], product, text)
            tried.append(attempt)
            if attempt.status == SENT:
                return attempt, tried
        if not tried:
            return Attempt(UNREACHABLE, error="no_conversation"), tried
        failed = [t for t in tried if t.status == FAILED]
        return (failed or tried)[0], tried

    async def _send(self, alert, conversation: str, channel: str, product: str, text: str) -> Attempt:
        metadata = {"sent_by": "system", "risk_alert": alert.id}
        if channel != WECHAT:
            try:
                await self._rasa.send_bot_message(conversation, text, metadata=metadata)
            except RasaApiError as error:
                return Attempt(FAILED, channel, conversation, str(error))
            return Attempt(SENT, channel, conversation)
        attempt = await self._send_wechat(alert, conversation, product, text)
        if attempt.status == SENT:
            await self._note_in_transcript(conversation, text, metadata)
        return attempt

    async def _send_wechat(self, alert, conversation: str, product: str, text: str) -> Attempt:
        if self._wechat is None:
            return Attempt(UNREACHABLE, WECHAT, conversation, "wechat_not_configured")
        # The client's errors (WeChatApiError) carry WeChat's errcode; network errors have none.
        openid = openid_of(conversation)
        if self._template_id:
            try:
                await self._wechat.send_subscribe(openid, self._template_id,
                                                  subscribe_fields(self._texts, product, alert.reason),
                                                  page=self._texts.page.format(alert_id=alert.id))
                return Attempt(SENT, WECHAT, conversation)
            except Exception as error:  # noqa: BLE001 - see above
                if getattr(error, "errcode", None) != SUBSCRIBE_REFUSED:
                    return Attempt(FAILED, WECHAT, conversation, repr(error))
        try:
            await self._wechat.send_text(openid, text)
        except Exception as error:  # noqa: BLE001 - see above
            reachable_later = getattr(error, "errcode", None) in (WINDOW_CLOSED, QUOTA_USED_UP)
            return Attempt(UNREACHABLE if reachable_later else FAILED, WECHAT, conversation, repr(error))
        return Attempt(SENT, WECHAT, conversation)

    async def _note_in_transcript(self, conversation: str, text: str, metadata: Dict[str, Any]) -> None:
        """What went out over WeChat, in the Rasa transcript too (not delivered again): best effort."""
        try:
            await self._rasa.append_events(conversation, [{"event": "bot", "text": text, "timestamp": time.time(),
                                                           "metadata": metadata}], deliver=False)
        except RasaApiError as error:
            logger.warning("a sent safety warning is missing from the transcript: %s", error)


def _refusal(texts: WarningTexts, alert) -> Optional[str]:
    """Why nobody is warned about this alert (staff-facing), or None."""
    if not getattr(alert, "safety", False):
        return texts.notes["not_safety"]
    if not getattr(alert, "confirmed_by", None):
        return texts.notes["not_confirmed"]
    if not alert.sku:
        return texts.notes["no_sku"]
    return None


def shopper_warnings_for(redis: aioredis.Redis, orders: OrderSystem, rasa: RasaApi,
                         env: Mapping[str, str] = os.environ, prefix: str = "xb:risk:") -> ShopperWarnings:
    """ShopperWarnings wired from the environment: the WeChat API when WECHAT_APPID and
    WECHAT_SECRET are set (sharing the channel's access token in this Redis),
    WECHAT_SAFETY_TEMPLATE_ID for subscribe messages, RISK_CONTACT_TTL_DAYS."""
    wechat = None
    if env.get("WECHAT_APPID") and env.get("WECHAT_SECRET"):
        # Only here: the package bot.channels loads Rasa's patches, which a console without
        # WeChat need not pay for; this module itself never imports Rasa.
        from bot.channels.wechat.client import WeChatApi

        wechat = WeChatApi(env.get("WECHAT_API_BASE") or "https://api.weixin.qq.com", env["WECHAT_APPID"],
                           env["WECHAT_SECRET"], redis)
    contacts = ContactBook(redis, prefix=prefix, ttl_days=float(env.get("RISK_CONTACT_TTL_DAYS") or CONTACT_TTL_DAYS))
    return ShopperWarnings(redis, orders, rasa, wechat, prefix, template_id=env.get("WECHAT_SAFETY_TEMPLATE_ID") or None,
                           contacts=contacts)
