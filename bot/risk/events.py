"""Rights signals as events: the schema every producer writes and every consumer reads. Pure.

An event says what happened (kind, reason), when and where (time, channel) and to what (order,
SKU, category, merchant). It carries no personal data: the order and the customer are HMAC
pseudonyms (`pseudonym`), keyed by RISK_PSEUDONYM_KEY from the environment, so the same shopper
is the same pseudonym across events (counts per shopper stay possible) but cannot be named from
the event alone. The optional excerpt of what the shopper said is masked (phones, ID numbers,
e-mails, addresses) and cut to EXCERPT_CHARS.
"""

from __future__ import annotations

import hashlib
import logging
import hmac
import os
import time
import uuid
from dataclasses import asdict, dataclass, fields
from typing import Dict, Mapping, Optional

from bot.privacy import mask_personal_data

# What a rights signal can be.
COMPLAINT = "complaint"  # a complaint ticket (handoff category complaint)
RETURN = "return"  # a return / exchange request, with its reason
SAFETY = "safety"  # a safety incident: injury, fire, electric shock, poisoning
LOW_CSAT = "low_csat"  # a rating of 1 or 2 after a handoff
RIGHTS_QUESTION = "rights_question"  # a consumer-rights question, by knowledge-base topic
NOT_RECEIVED = "not_received"  # shown as delivered, but the shopper says it never arrived
KINDS = (COMPLAINT, RETURN, SAFETY, LOW_CSAT, RIGHTS_QUESTION, NOT_RECEIVED)

EXCERPT_CHARS = 120
logger = logging.getLogger(__name__)
_warned = False
_DEV_KEY = b"xiaobao-dev-pseudonym-key: set RISK_PSEUDONYM_KEY in production"


def pseudonym_key(env: Mapping[str, str] = os.environ) -> bytes:
    """RISK_PSEUDONYM_KEY (`make run` passes one generated once in var/, see
    bot.settings.risk_pseudonym_key); without it a fixed development key, with a warning: anyone
    holding this source could then link pseudonyms to the customer ids they know."""
    global _warned
    key = env.get("RISK_PSEUDONYM_KEY", "")
    if key:
        return key.encode()
    if not _warned:
        _warned = True
        logger.warning("RISK_PSEUDONYM_KEY is not set: rights events use the development pseudonym key")
    return _DEV_KEY


def pseudonym(value: Optional[str], key: Optional[bytes] = None) -> Optional[str]:
    """A stable pseudonymous id for an order or customer id (HMAC-SHA256, 16 hex digits)."""
    if not value:
        return None
    digest = hmac.new(key or pseudonym_key(), str(value).encode("utf-8", "surrogatepass"), hashlib.sha256)
    return "p" + digest.hexdigest()[:16]


@dataclass(frozen=True)
class RiskEvent:
    id: str  # unique per signal: consumers count an id once, however often it is delivered
    kind: str  # one of KINDS
    at: float  # unix seconds, set by our server (never by the shopper)
    channel: str  # web, wechat, rest, console
    reason: str  # return reason, safety kind (injury/fire/shock/poisoning), complaint category, KB topic
    sku: Optional[str] = None
    category: Optional[str] = None
    merchant: Optional[str] = None
    order: Optional[str] = None  # pseudonym of the order id
    customer: Optional[str] = None  # pseudonym of the customer id
    ticket: Optional[str] = None  # the handoff ticket's id (a case number, not personal data)
    excerpt: str = ""  # masked, at most EXCERPT_CHARS

    def to_fields(self) -> Dict[str, str]:
        """The Redis stream entry: strings only, empty fields left out."""
        out = {}
        for name, value in asdict(self).items():
            if value is None or value == "":
                continue
            out[name] = repr(value) if name == "at" else str(value)
        return out

    @classmethod
    def from_fields(cls, data: Mapping) -> "RiskEvent":
        """From a stream entry (bytes or str keys and values); raises ValueError if malformed."""
        def text(value):
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

        decoded = {text(k): text(v) for k, v in data.items()}
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in decoded.items() if k in names}
        try:
            values["at"] = float(values["at"])
            if values["kind"] not in KINDS or not values["id"] or not values.get("reason"):
                raise ValueError(f"not a rights event: {values.get('kind')!r}")
            values.setdefault("channel", "unknown")
            return cls(**values)
        except (KeyError, TypeError) as error:
            raise ValueError(f"malformed rights event: {error}") from error


def new_event(kind: str, reason: str, channel: str, *, at: Optional[float] = None, sku: Optional[str] = None,
              category: Optional[str] = None, merchant: Optional[str] = None, order_id: Optional[str] = None,
              customer_id: Optional[str] = None, ticket: Optional[str] = None, text: str = "",
              key: Optional[bytes] = None, event_id: Optional[str] = None) -> RiskEvent:
    """An event with the order and customer pseudonymised and the excerpt masked."""
    if kind not in KINDS:
        raise ValueError(f"unknown rights event kind {kind!r}")
    excerpt = mask_personal_data((text or "").strip())[:EXCERPT_CHARS]
    return RiskEvent(
        id=event_id or uuid.uuid4().hex, kind=kind, at=time.time() if at is None else float(at),
        channel=channel or "unknown", reason=reason or "unspecified", sku=sku or None, category=category or None,
        merchant=merchant or None, order=pseudonym(order_id, key), customer=pseudonym(customer_id, key),
        ticket=ticket or None, excerpt=excerpt,
    )
