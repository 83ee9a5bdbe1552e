"""The return form: order, items, reason, evidence, condition, confirmation, and the submit.

The rules themselves live in bot.orders.eligibility; this module only asks, checks ownership,
and calls the order system.
"""

from __future__ import annotations

import enum
import json
import logging
import re
import datetime as dt
from functools import lru_cache
from typing import Any, Dict, List, Optional, Text, Tuple

import yaml
from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from redis.exceptions import RedisError

from actions import risk_signals, services
from actions.buttons import stale_button
from actions.services import customer_of, order_system, today
from bot import limits
from bot.identity import phone_last4_matches
from bot.orders.client import NewReturn, OrderSystemTimeout, OrderSystemUnavailable
from bot.orders.eligibility import Eligibility, assess, condition_checks, condition_question
from bot.orders.models import SHANGHAI, Order, OrderStatus, ReturnReason
from bot.paths import KNOWLEDGE_DIR

FORM = "return_form"
RETURN_SLOTS = ("return_items", "return_reason", "return_evidence", "goods_condition",
                "condition_answers", "return_confirmed", "phone_last4", "form_failures", "order_choices")
# A step that fails twice (unknown order, wrong phone digits, unusable evidence) hands over to a person.
MAX_FORM_FAILURES = 2
EVIDENCE_MIN_CHARS = 4
LAST4_DIGITS = re.compile(r"(?<!\d)(\d{4})(?!\d)")
_DIGITS = re.compile(r"\d{5,}")
_ORDINALS = {"第一": 0, "第1": 0, "第二": 1, "第2": 1, "第三": 2, "第3": 2, "第四": 3, "第4": 3}
_ALL_WORDS = ("全部", "都退", "所有", "都要", "全退", "整单")
# 「不是这单」: the shopper corrects the order; the answers tied to that order are asked again.
SWITCH_WORDS = ("不是这单", "不是这个订单", "不是这笔", "换一个订单", "换个订单", "换一单", "另一个订单",
                "另一单", "另外一个订单", "另外一单", "别的订单", "其他订单", "其它订单", "选错订单", "选错了订单")
ORDER_BOUND_SLOTS = ("return_items", "goods_condition", "condition_answers", "return_confirmed", "phone_last4")
# A question about returns (「收到5天了能退吗」) is answered before any form starts; a request is not.
_QUESTION = re.compile(r"[吗么呢嘛？?]\s*$|能不能|可不可以|可以不|行不行|能退不|算不算|是不是|多久|几天")
_REQUEST_WORDS = ("我要", "帮我", "给我", "申请", "想退", "要退", "办理", "也想")
MAX_ORDER_CARDS = 6
# Guessing the phone digits of an order is limited per ORDER (not per conversation, which a REST
# client names freely): at most this many wrong guesses a day, shared by every channel and
# replica through Redis; after that the order is locked for self-service verification and a
# person takes over. A per-client-IP limit (when the channel vouches for the IP) sits on top.
VERIFY_FAILURES_PER_ORDER = 3
VERIFY_FAILURES_PER_IP = 20
VERIFY_WINDOW_S = 24 * 3600
logger = logging.getLogger(__name__)


class Verification(enum.Enum):
    VERIFIED = "verified"
    WRONG = "wrong"
    LOCKED = "locked"  # too many wrong guesses for this order (or from this IP) today
    UNAVAILABLE = "unavailable"  # the limit could not be checked: no verification at all


def client_ip(tracker: Tracker) -> Optional[str]:
    """The client IP of the latest message, only when the REST channel itself put it there."""
    latest = next((e for e in reversed(tracker.events) if e.get("event") == "user"), None) or {}
    if latest.get("input_channel") != "rest":
        return None
    ip = (latest.get("metadata") or {}).get("client_ip")
    return ip if isinstance(ip, str) and ip else None


async def verify_phone_digits(tracker: Tracker, order_id: str, order: Optional[Order], claimed: Any) -> Verification:
    """Checks the claimed last four phone digits of an order, within the per-order and per-IP limits.

    The attempt is reserved (counted) before the digits are compared, so parallel guesses cannot
    slip past the limit; a right answer gives its reservation back. An unknown order counts
    exactly like a known one, so the replies never tell whether an order exists.
    """
    redis = services.limits_redis()
    ip = client_ip(tracker)
    try:
        if await limits.hit(redis, "verify-order", order_id, VERIFY_WINDOW_S) > VERIFY_FAILURES_PER_ORDER:
            logger.warning("phone-digit verification locked for an order after %d failures", VERIFY_FAILURES_PER_ORDER)
            return Verification.LOCKED
        if ip and await limits.hit(redis, "verify-ip", ip, VERIFY_WINDOW_S) > VERIFY_FAILURES_PER_IP:
            await limits.release(redis, "verify-order", order_id)  # this IP's lock, not the order's
            logger.warning("phone-digit verification locked for a client IP")
            return Verification.LOCKED
        if order is None or not phone_last4_matches(order.phone, claimed):
            return Verification.WRONG
        await limits.release(redis, "verify-order", order_id)
        if ip:
            await limits.release(redis, "verify-ip", ip)
        return Verification.VERIFIED
    except (RedisError, OSError) as error:
        logger.warning("could not check the verification limit (%s); not verifying", error)
        return Verification.UNAVAILABLE


@lru_cache(maxsize=1)
def return_texts() -> Dict[str, Any]:
    rules = yaml.safe_load((KNOWLEDGE_DIR / "return_rules.yml").read_text(encoding="utf-8"))
    steps = yaml.safe_load((KNOWLEDGE_DIR / "return_next_steps.yml").read_text(encoding="utf-8"))
    return {**rules, "next_steps": steps}


def inform_payload(**entities: str) -> str:
    return "/inform" + json.dumps(entities, ensure_ascii=False)


def citation_line(decision: Eligibility) -> str:
    return "、".join(c.line for c in decision.citations) or "本店售后规则"


async def owned_order(tracker: Tracker, order_id: Optional[str]) -> Optional[Order]:
    """The order if this shopper may see it: their own, or verified by phone digits. Else None."""
    if not order_id:
        return None
    order = await (await order_system()).order(order_id)
    if order is None:
        return None
    customer = await customer_of(tracker)
    if customer is not None:
        return order if order.customer_id == customer else None
    return order if order_id in (tracker.get_slot("verified_order_ids") or []) else None


def assess_items(order: Order, item_ids: List[str], reason: str, condition: Dict[str, bool],
                 notice: Optional[dt.date] = None) -> List[Eligibility]:
    return [assess(order, order.item(i), reason, today(), condition, notice=notice) for i in item_ids if order.item(i)]


async def notice_date(order: Order) -> Optional[dt.date]:
    """The day the shopper first asked to return goods of this order (暂行办法 第十条: the notice
    counts, not the day of this chat): the order system's record or the earliest return request."""
    days = [order.return_notice_at] if order.return_notice_at else []
    if order.status == OrderStatus.DELIVERED:
        returns = await (await order_system()).returns_of(order.customer_id)
        days += [r.created_at for r in returns if r.order_id == order.order_id and r.kind == "return"]
    return min(d.astimezone(SHANGHAI).date() for d in days) if days else None


async def shopper_orders(tracker: Tracker) -> List[Order]:
    """The orders this shopper may return from: a customer's own (not unpaid), or a guest's
    orders verified in this conversation. Newest first, as the order system lists them."""
    customer = await customer_of(tracker)
    system = await order_system()
    if customer is not None:
        return [o for o in await system.orders_of(customer) if o.status != OrderStatus.UNPAID]
    found = [await system.order(i) for i in dict.fromkeys(tracker.get_slot("verified_order_ids") or [])]
    return [o for o in found if o is not None and o.status != OrderStatus.UNPAID]


def previous_value(tracker: Tracker, slot: str) -> Any:
    """The slot's value before the latest user message (its slot mappings run after it)."""
    value, latest = None, None
    for n, event in enumerate(tracker.events):
        if event.get("event") == "user":
            latest = n
    for event in tracker.events[:latest]:
        if event.get("event") == "slot" and event.get("name") == slot:
            value = event.get("value")
    return value


def named_items(order: Order, text: str) -> List[str]:
    return [i.item_id for i in order.items if _names_item(text, i.name)]


def orders_naming(orders: List[Order], text: str) -> List[Tuple[Order, List[str]]]:
    """The orders with an item the shopper's words name (「耳机也想退」), with those items."""
    return [(o, named) for o in orders if (named := named_items(o, text))]


def is_question(text: str) -> bool:
    """「收到5天了能退吗」 asks; 「我要退货」「帮我退一下吗」 request."""
    text = (text or "").strip()
    return bool(text) and not text.startswith("/") and bool(_QUESTION.search(text)) and not any(
        w in text for w in _REQUEST_WORDS)


def refund_line(order: Order, decisions: List[Eligibility]) -> str:
    """The refund the shopper can expect: the items' price × quantity, and who pays the return
    shipping per our policy data. Empty when nothing is refunded (exchange, repair, redelivery)."""
    if not decisions or decisions[0].kind not in ("return", "cancel", "intercept"):
        return ""
    items = [order.item(d.facts["item_id"]) for d in decisions]
    total = sum(i.price * i.quantity for i in items)
    parts = "，".join(f"{i.name} ¥{i.price:.2f}×{i.quantity}" for i in items)
    line = f"\n💰 预计退款：¥{total:.2f}（{parts}）"
    if decisions[0].kind == "return":
        steps = return_texts()["next_steps"]["shipping"]
        line += f"；{steps[decisions[0].shipping_paid_by or 'consumer']}"
    return line


def needs_evidence(order: Order, reason: Optional[str]) -> bool:
    return order.status == OrderStatus.DELIVERED and reason in ReturnReason.SELLER_FAULT


def pending_condition_keys(order: Order, item_ids: List[str], answers: Dict[str, bool]) -> List[str]:
    keys: List[str] = []
    for item_id in item_ids:
        for key in condition_checks(order.item(item_id)):
            if key not in answers and key not in keys:
                keys.append(key)
    return keys


def apologise_on_outage(run):
    """An order-system outage ends the step with an apology instead of an action-server error."""

    async def guarded(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict):
        try:
            return await run(self, dispatcher, tracker, domain)
        except OrderSystemUnavailable:
            dispatcher.utter_message(response="utter_order_system_down")
            requested = tracker.get_slot("requested_slot")
            return [SlotSet(requested, None)] if requested else []

    return guarded


def handing_over(tracker: Tracker) -> bool:
    return (tracker.get_slot("form_failures") or 0) >= MAX_FORM_FAILURES


def failed_step(tracker: Tracker, dispatcher: CollectingDispatcher, response: str, **cleared: Any) -> Dict[Text, Any]:
    """Explains a failed step; the second failure in this form hands over to a person instead."""
    failures = (tracker.get_slot("form_failures") or 0) + 1
    dispatcher.utter_message(response=response if failures < MAX_FORM_FAILURES else "utter_form_handover")
    return {**cleared, "form_failures": failures}


async def photo_is_ours(tracker: Tracker, reference: str) -> bool:
    """True when the photo is an upload this conversation made, never any string a client sends.

    Web uploads are recorded by the upload route (bot.webchat.routes); a WeChat photo is stored by
    the WeChat channel itself, so one in the latest message of that channel is this sender's.
    An upload recorded without a conversation belongs to the first conversation that uses it.
    """
    name = limits.upload_name(reference)
    if name is None:
        return False
    redis = services.limits_redis()
    latest = services.latest_user_event(tracker)
    try:
        if (reference.startswith("wechat-media:") and latest.get("input_channel") == services.WECHAT_CHANNEL
                and reference in ((latest.get("metadata") or {}).get("attachments") or [])):
            await limits.record_upload(redis, name, tracker.sender_id)
        return await limits.claim_upload(redis, name, tracker.sender_id)
    except (RedisError, OSError) as error:
        logger.warning("could not check a photo's upload record (%s); not accepting it", error)
        return False


async def answer_first(dispatcher: CollectingDispatcher, tracker: Tracker) -> Optional[List[Dict[Text, Any]]]:
    """A question that opened the return form is answered from the knowledge base, with
    「需要我帮您申请吗？」, and the form ends before asking anything. None when the knowledge
    base has no sure answer: then the form starts as usual."""
    from actions import rights  # the knowledge index is built when that module loads

    decision = await rights.decide_for(rights.default_index(dense=True), tracker.latest_message.get("text") or "")
    if decision.kind != "answer":
        return None
    events = rights.ActionAnswerQuestion().answer(dispatcher, tracker, decision, offer="request_return")
    return events + [SlotSet("requested_slot", None), ActiveLoop(None)]


class ValidateReturnForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_return_form"

    @apologise_on_outage
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict):
        requested = tracker.get_slot("requested_slot")
        if requested and stale_button(tracker):  # an old or forged button: this question again
            dispatcher.utter_message(response="utter_button_expired")
            # An order number in the payload was already put in its slot by the slot mapping.
            restored = ([SlotSet("order_id", previous_value(tracker, "order_id"))]
                        if next(tracker.get_latest_entity_values("order_id"), None) else [])
            return restored + [SlotSet(requested, None), SlotSet("requested_slot", requested)]
        if requested is None and is_question(tracker.latest_message.get("text") or ""):
            answered = await answer_first(dispatcher, tracker)
            if answered is not None:
                return answered
        chosen = await self.choose_order(dispatcher, tracker)
        tracker.add_slots(chosen)
        return chosen + await super().run(dispatcher, tracker, domain)

    async def choose_order(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> List[Dict[Text, Any]]:
        """Which order this return is about, before the steps run. The order of an earlier turn
        (a parcel just tracked) is never assumed: at the start, an order named in this message or
        the one order holding the item named (「耳机也想退」) is taken, else the shopper picks. At
        any step 「不是这单」 or an item of another order switches orders; the reason and
        evidence stay, the answers tied to the old order are asked again."""
        text = tracker.latest_message.get("text") or ""
        named = next(tracker.get_latest_entity_values("order_id"), None)
        if named:  # named in this message: the order step checks it; another order starts afresh
            earlier = previous_value(tracker, "order_id")
            return self._switch_to(named, None) if earlier and earlier != named else []
        starting = tracker.get_slot("requested_slot") is None
        switching = any(word in text for word in SWITCH_WORDS) or (
            (tracker.latest_message.get("intent") or {}).get("name") == "switch_order")
        current = tracker.get_slot("order_id")
        if not (starting or switching or tracker.get_slot("requested_slot") in ("order_id", "return_items")):
            return []
        orders = await shopper_orders(tracker)
        naming = orders_naming(orders, text) if not text.startswith("/") else []
        if naming and (starting or current not in [o.order_id for o, _ in naming]):
            if len(naming) == 1:
                order, items = naming[0]
                return self._switch_to(order.order_id, items)
            return self._switch_to(None, None, choices=[o.order_id for o, _ in naming])
        if switching:
            others = [o.order_id for o in orders if o.order_id != current]
            dispatcher.utter_message(response="utter_switch_order")
            return self._switch_to(None, None, choices=others)
        if starting:
            if len(orders) == 1 and await customer_of(tracker) is not None:
                return self._switch_to(orders[0].order_id, None) if current != orders[0].order_id else []
            if current and (len(orders) > 1 or await customer_of(tracker) is not None):
                return self._switch_to(None, None)  # several orders and none named: ask which
        return []

    @staticmethod
    def _switch_to(order_id: Optional[str], items: Optional[List[str]],
                   choices: Optional[List[str]] = None) -> List[Dict[Text, Any]]:
        return [SlotSet("order_id", order_id), SlotSet("order_choices", choices or None),
                *[SlotSet(slot, items if slot == "return_items" else None) for slot in ORDER_BOUND_SLOTS]]

    async def required_slots(
        self, domain_slots: List[Text], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[Text]:
        if handing_over(tracker):
            return []
        order_id = tracker.get_slot("order_id")
        if not order_id:
            return ["order_id"]
        anonymous = await customer_of(tracker) is None
        if anonymous and order_id not in (tracker.get_slot("verified_order_ids") or []):
            return ["order_id", "phone_last4"]
        order = await owned_order(tracker, order_id)
        if order is None:
            return ["order_id"]
        slots = ["order_id", "return_items", "return_reason"]
        items, reason = tracker.get_slot("return_items"), tracker.get_slot("return_reason")
        if not items or not reason:
            return slots
        if needs_evidence(order, reason):
            slots.append("return_evidence")
        answers = tracker.get_slot("condition_answers") or {}
        decisions = assess_items(order, items, reason, answers, await notice_date(order))
        if any(d.outcome == "needs_condition" for d in decisions):
            return slots + ["goods_condition"]
        if any(d.allowed for d in decisions):
            slots.append("return_confirmed")
        return slots

    # -- order number -------------------------------------------------------------------
    async def extract_order_id(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        if tracker.get_slot("requested_slot") != "order_id":
            return {}
        if next(tracker.get_latest_entity_values("order_id"), None) is None and _DIGITS.search(
            tracker.latest_message.get("text") or ""
        ):
            return failed_step(tracker, dispatcher, "utter_order_id_malformed", order_id=None)
        return {}

    async def validate_order_id(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        if not value:
            return {"order_id": None}
        if await customer_of(tracker) is None:
            return {"order_id": value}  # asked for phone digits whether or not it exists: no leak
        try:
            order = await owned_order(tracker, value)
        except OrderSystemUnavailable:
            dispatcher.utter_message(response="utter_order_system_down")
            return {"order_id": None}
        if order is None:
            return failed_step(tracker, dispatcher, "utter_order_not_found", order_id=None)
        return {"order_id": value}

    # -- phone digits (anonymous shoppers) ------------------------------------------------
    async def extract_phone_last4(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        if tracker.get_slot("requested_slot") != "phone_last4":
            return {}
        found = LAST4_DIGITS.search(tracker.latest_message.get("text") or "")
        return {"phone_last4": found.group(1)} if found else {}

    async def validate_phone_last4(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        order_id = tracker.get_slot("order_id")
        try:
            order = await (await order_system()).order(order_id) if order_id else None
        except OrderSystemUnavailable:
            dispatcher.utter_message(response="utter_order_system_down")
            return {"phone_last4": None}
        outcome = await verify_phone_digits(tracker, order_id or "", order, value) if order_id else Verification.WRONG
        if outcome is Verification.VERIFIED:
            verified = list(tracker.get_slot("verified_order_ids") or []) + [order_id]
            return {"phone_last4": value, "verified_order_ids": verified}
        if outcome is Verification.UNAVAILABLE:
            dispatcher.utter_message(response="utter_order_system_down")
            return {"phone_last4": None}
        if outcome is Verification.LOCKED:  # a person takes over: the form ends in action_escalate
            dispatcher.utter_message(response="utter_order_verify_locked")
            return {"phone_last4": None, "order_id": None, "form_failures": MAX_FORM_FAILURES}
        # Only the digits are asked again (the order number stays): the same words whether or not
        # the order exists, so nothing tells a guesser which numbers are real.
        return failed_step(tracker, dispatcher, "utter_phone_last4_wrong", phone_last4=None)

    # -- items --------------------------------------------------------------------------
    async def extract_return_items(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        if tracker.get_slot("requested_slot") != "return_items":
            return {}
        order = await owned_order(tracker, tracker.get_slot("order_id"))
        if order is None:
            return {}
        picked = list(tracker.get_latest_entity_values("item_id"))
        text = tracker.latest_message.get("text") or ""
        if "all" in picked or any(word in text for word in _ALL_WORDS):
            return {"return_items": [i.item_id for i in order.items]}
        picked += [order.items[n].item_id for word, n in _ORDINALS.items() if word in text and n < len(order.items)]
        picked += [i.item_id for i in order.items if _names_item(text, i.name)]
        picked = [i for i in dict.fromkeys(picked) if order.item(i)]
        return {"return_items": picked} if picked else {}

    async def validate_return_items(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        order = await owned_order(tracker, tracker.get_slot("order_id"))
        items = [i for i in value or [] if order is not None and order.item(i)]
        return {"return_items": items or None}

    # -- reason -------------------------------------------------------------------------
    async def extract_return_reason(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        if tracker.get_slot("requested_slot") != "return_reason":
            return {}
        reason = next(tracker.get_latest_entity_values("return_reason"), None)
        if reason in ReturnReason.ALL:
            return {"return_reason": reason}
        text = tracker.latest_message.get("text") or ""
        for candidate, words in return_texts()["reason_keywords"].items():
            if any(word in text for word in words):
                return {"return_reason": candidate}
        return {}

    async def validate_return_reason(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return {"return_reason": value if value in ReturnReason.ALL else None}

    # -- evidence -----------------------------------------------------------------------
    async def extract_return_evidence(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        if tracker.get_slot("requested_slot") != "return_evidence":
            return {}
        metadata = tracker.latest_message.get("metadata") or {}
        photos = [str(p) for p in metadata.get("attachments") or [] if p]
        text = (tracker.latest_message.get("text") or "").strip()
        if photos:
            return {"return_evidence": [f"photo:{p}" for p in photos] + ([f"text:{text}"] if text else [])}
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if text and intent not in ("stop", "ask_rights", "ask_policy", "request_human", "order_status"):
            return {"return_evidence": [f"text:{text}"]}
        return {}

    async def validate_return_evidence(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        value = [v for v in value or [] if isinstance(v, str)]
        refused = [v for v in value if v.startswith("photo:") and not await photo_is_ours(tracker, v[len("photo:"):])]
        if refused:
            value = [v for v in value if v not in refused]
            if not value:
                return failed_step(tracker, dispatcher, "utter_evidence_photo_unknown", return_evidence=None)
            dispatcher.utter_message(response="utter_evidence_photo_unknown")
        has_photo = any(v.startswith("photo:") for v in value or [])
        described = sum(len(v) - len("text:") for v in value or [] if v.startswith("text:"))
        if has_photo or described >= EVIDENCE_MIN_CHARS:
            return {"return_evidence": value}
        return failed_step(tracker, dispatcher, "utter_evidence_too_short", return_evidence=None)

    # -- condition of the goods (完好) ----------------------------------------------------
    async def extract_goods_condition(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        if tracker.get_slot("requested_slot") != "goods_condition":
            return {}
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if intent not in ("affirm", "deny"):
            return {}
        order = await owned_order(tracker, tracker.get_slot("order_id"))
        answers = dict(tracker.get_slot("condition_answers") or {})
        pending = pending_condition_keys(order, tracker.get_slot("return_items") or [], answers)
        if not pending:
            return {}
        answers[pending[0]] = intent == "affirm"
        return {"goods_condition": answers}

    async def validate_goods_condition(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        order = await owned_order(tracker, tracker.get_slot("order_id"))
        if value is None or order is None:
            return {"goods_condition": None}
        still = pending_condition_keys(order, tracker.get_slot("return_items") or [], value or {})
        # Keep asking until every question for these items is answered.
        return {"condition_answers": value, "goods_condition": None if still else value}

    # -- confirmation -------------------------------------------------------------------
    async def extract_return_confirmed(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        if tracker.get_slot("requested_slot") != "return_confirmed":
            return {}
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        return {"return_confirmed": intent == "affirm"} if intent in ("affirm", "deny") else {}

    async def validate_return_confirmed(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return {"return_confirmed": None if value is None else bool(value)}


def _names_item(text: str, name: str) -> bool:
    """True when the shopper's words name this item: any 2-character run of the name."""
    core = re.sub(r"[\s\d]+.*$", "", name) or name
    return any(core[i : i + 2] in text for i in range(len(core) - 1))


@lru_cache(maxsize=1)
def status_labels() -> Dict[str, str]:
    labels = yaml.safe_load((KNOWLEDGE_DIR / "order_labels.yml").read_text(encoding="utf-8"))
    return labels["order_status"]


def order_card(order: Order) -> Dict[str, Any]:
    """One order as contract (A)'s `order_cards` entry; tapping it sends `payload`."""
    return {
        "order_id": order.order_id, "status": order.status, "status_label": status_labels()[order.status],
        "created_at": f"{order.created_at.astimezone(SHANGHAI):%Y-%m-%d}",
        "total": round(sum(i.price * i.quantity for i in order.items), 2),
        "items": [{"name": i.name, "sku": i.sku, "price": i.price, "quantity": i.quantity} for i in order.items],
        "payload": inform_payload(order_id=order.order_id),
    }


class ActionAskOrderId(Action):
    """Asks which order: the shopper's orders as cards, with the same choices as text buttons for
    channels that cannot show cards (REST, WeChat), or the order number for a guest."""

    def name(self) -> Text:
        return "action_ask_order_id"

    @apologise_on_outage
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        try:
            orders = await shopper_orders(tracker)
        except OrderSystemUnavailable:
            orders = []
        choices = tracker.get_slot("order_choices")
        if choices:
            orders = [o for o in orders if o.order_id in choices] or orders
        if not orders:
            dispatcher.utter_message(response="utter_ask_order_id_number")
            return []
        orders = orders[:MAX_ORDER_CARDS]
        buttons = [
            {"title": f"{o.created_at:%m-%d} {o.items[0].name}等{len(o.items)}件（{o.order_id}）",
             "payload": inform_payload(order_id=o.order_id)}
            for o in orders
        ]
        dispatcher.utter_message(response="utter_ask_pick_order", buttons=buttons,
                                 json_message={"type": "order_cards", "orders": [order_card(o) for o in orders]})
        return []


class ActionAskReturnItems(Action):
    def name(self) -> Text:
        return "action_ask_return_items"

    @apologise_on_outage
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        order = await owned_order(tracker, tracker.get_slot("order_id"))
        buttons = [{"title": f"{i.name}（¥{i.price:g}）", "payload": inform_payload(item_id=i.item_id)} for i in order.items]
        buttons.append({"title": "全部商品", "payload": inform_payload(item_id="all")})
        dispatcher.utter_message(response="utter_ask_pick_items", buttons=buttons)
        return []


class ActionAskReturnReason(Action):
    def name(self) -> Text:
        return "action_ask_return_reason"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        buttons = [{"title": label, "payload": inform_payload(return_reason=reason)}
                   for reason, label in return_texts()["reason_labels"].items()]
        dispatcher.utter_message(response="utter_ask_return_reason", buttons=buttons)
        return []


class ActionAskGoodsCondition(Action):
    def name(self) -> Text:
        return "action_ask_goods_condition"

    @apologise_on_outage
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        order = await owned_order(tracker, tracker.get_slot("order_id"))
        pending = pending_condition_keys(order, tracker.get_slot("return_items") or [], tracker.get_slot("condition_answers") or {})
        dispatcher.utter_message(response="utter_ask_condition_item", question=condition_question(pending[0]))
        return []


def summary(order: Order, item_ids: List[str], reason: str, answers: Dict[str, bool],
            notice: Optional[dt.date] = None) -> Tuple[List[Eligibility], List[Eligibility]]:
    if order.status == OrderStatus.SHIPPED:  # a parcel is intercepted whole, never one item of it
        item_ids = [i.item_id for i in order.items]
    decisions = assess_items(order, item_ids, reason, answers, notice)
    return [d for d in decisions if d.allowed], [d for d in decisions if not d.allowed]


def item_names(order: Order, decisions: List[Eligibility]) -> str:
    return "、".join(d.facts["item"] for d in decisions)


class ActionAskReturnConfirmed(Action):
    def name(self) -> Text:
        return "action_ask_return_confirmed"

    @apologise_on_outage
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        order = await owned_order(tracker, tracker.get_slot("order_id"))
        reason = tracker.get_slot("return_reason")
        allowed, refused = summary(order, tracker.get_slot("return_items"), reason,
                                   tracker.get_slot("condition_answers") or {}, await notice_date(order))
        for decision in refused:
            dispatcher.utter_message(response="utter_return_not_eligible", explanation=decision.explanation,
                                     citation=citation_line(decision))
        first = allowed[0]
        chosen = tracker.get_slot("return_items") or []
        if first.kind == "intercept":
            others = [d.facts["item"] for d in allowed if d.facts["item_id"] not in chosen]
            dispatcher.utter_message(
                response="utter_ask_confirm_intercept" if others else "utter_ask_confirm_intercept_all",
                order_id=order.order_id, items=item_names(order, allowed), others="、".join(others),
                chosen="、".join(d.facts["item"] for d in allowed if d.facts["item_id"] in chosen),
                refund=refund_line(order, allowed))
            return []
        response = "utter_ask_confirm_cancel" if first.kind == "cancel" else "utter_ask_confirm_return"
        dispatcher.utter_message(
            response=response, order_id=order.order_id, items=item_names(order, allowed),
            reason=return_texts()["reason_labels"][reason], explanation=first.explanation,
            citation=citation_line(first), refund=refund_line(order, allowed),
        )
        return []


class ActionSubmitReturn(Action):
    def name(self) -> Text:
        return "action_submit_return"

    @apologise_on_outage
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        reset = [SlotSet(slot, None) for slot in RETURN_SLOTS if slot != "form_failures"]
        if handing_over(tracker):
            return reset + [FollowupAction("action_escalate")]  # it resets form_failures
        order = await owned_order(tracker, tracker.get_slot("order_id"))
        reason = tracker.get_slot("return_reason")
        if order is None or not reason:
            return reset  # verification failed: already explained
        allowed, refused = summary(order, tracker.get_slot("return_items") or [], reason,
                                   tracker.get_slot("condition_answers") or {}, await notice_date(order))
        if not allowed:
            for decision in refused:
                dispatcher.utter_message(response="utter_return_not_eligible", explanation=decision.explanation,
                                         citation=citation_line(decision))
            if any(d.outcome == "window_holiday_review" for d in refused):
                return reset + [FollowupAction("action_escalate")]  # a colleague checks the holiday
            return reset
        if not tracker.get_slot("return_confirmed"):
            dispatcher.utter_message(response="utter_return_not_submitted")
            return reset
        request = NewReturn(
            order_id=order.order_id, customer_id=order.customer_id,
            item_ids=tuple(d.facts["item_id"] for d in allowed), reason=reason, kind=allowed[0].kind,
            evidence=tuple(tracker.get_slot("return_evidence") or ()),
            condition=dict(tracker.get_slot("condition_answers") or {}),
        )
        try:
            created_return, created = await (await order_system()).create_return(request)
        except OrderSystemUnavailable as error:
            # After a timeout the order system may still open the return; a retry is idempotent.
            timed_out = isinstance(error, OrderSystemTimeout)
            dispatcher.utter_message(response="utter_return_unconfirmed" if timed_out else "utter_order_system_down")
            return [SlotSet("return_confirmed", None)]
        try:  # also when a retry found the return open: event ids per return and item count it once
            await risk_signals.return_submitted(tracker, order, request.item_ids, reason, created_return.return_id)
        except Exception:  # noqa: BLE001 - a rights signal never breaks the conversation
            logger.warning("return signal of %s not sent", created_return.return_id)
        steps = return_texts()["next_steps"]
        next_steps = steps[created_return.kind].format(shipping=steps["shipping"][allowed[0].shipping_paid_by or "consumer"])
        dispatcher.utter_message(
            response="utter_return_created" if created else "utter_return_already_open",
            return_id=created_return.return_id, next_steps=next_steps,
            json_message={"type": "return_request", "return_id": created_return.return_id,
                          "order_id": order.order_id, "items": list(request.item_ids), "kind": created_return.kind,
                          "citations": [c.payload() for c in allowed[0].citations]},
        )
        return reset


class ActionResetReturn(Action):
    def name(self) -> Text:
        return "action_reset_return"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        return [SlotSet(slot, None) for slot in RETURN_SLOTS] + [SlotSet("requested_slot", None)]
