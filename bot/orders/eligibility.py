"""Return eligibility as the law defines it. Pure functions: no Rasa, Redis or HTTP.

七日无理由: 消费者权益保护法 第二十五条 and 网络购买商品七日无理由退货暂行办法 (the window is
counted from the day after signing, 第十条; exclusions 第六条/第七条; 完好 第八条/第九条;
return shipping 第十八条; refund within 7 days of receipt 第十三条). Quality defects: 消费者权益
保护法 第二十四条 (return within 7 days of receipt, then exchange or repair; the seller pays
transport). Dates are calendar days in Asia/Shanghai.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Dict, Mapping, Optional, Tuple

import yaml

from bot.knowledge.kb import Citation, cite
from bot.orders.models import SHANGHAI, ItemClass, Order, OrderItem, OrderStatus, ReturnReason
from bot.paths import KNOWLEDGE_DIR

CONSUMER_LAW = "中华人民共和国消费者权益保护法"
SEVEN_DAY_RULES = "网络购买商品七日无理由退货暂行办法"
WINDOW_DAYS = 7

_EXCLUDED = {
    ItemClass.CUSTOM_MADE: "excluded_custom_made",
    ItemClass.PERISHABLE: "excluded_perishable",
    ItemClass.DIGITAL_DOWNLOAD: "excluded_digital_download",
    ItemClass.NEWSPAPER: "excluded_newspaper",
}
# What decides 完好 for each category (暂行办法 第八条, 第九条).
_CONDITION_CHECKS = {
    "食品生鲜": ("complete", "seal_intact"),
    "美妆个护": ("complete", "seal_intact"),
    "手机数码": ("complete", "not_activated"),
    "电脑办公": ("complete", "not_activated"),
    "家用电器": ("complete", "not_activated"),
    "服装鞋包": ("complete", "tags_intact"),
    "母婴玩具": ("complete", "tags_intact"),
    "家居家装": ("complete", "tags_intact"),
}


@dataclass(frozen=True)
class Eligibility:
    outcome: str  # a key of knowledge/return_rules.yml explanations
    allowed: bool
    kind: Optional[str]  # the return request to open: return, exchange_or_repair, cancel, intercept
    explanation: str
    citations: Tuple[Citation, ...] = ()
    shipping_paid_by: Optional[str] = None  # "consumer" or "seller"
    deadline: Optional[dt.date] = None  # last day of the 7-day window
    questions: Tuple[str, ...] = ()  # condition keys still to ask (outcome needs_condition)
    facts: Dict[str, str] = field(default_factory=dict)


@lru_cache(maxsize=1)
def rules_text() -> Mapping[str, Mapping[str, str]]:
    return yaml.safe_load((KNOWLEDGE_DIR / "return_rules.yml").read_text(encoding="utf-8"))


def condition_checks(item: OrderItem) -> Tuple[str, ...]:
    if item.item_class == ItemClass.SEALED_MEDIA:
        return ("complete", "media_sealed")
    return _CONDITION_CHECKS.get(item.category, ("complete",))


def condition_question(key: str) -> str:
    return rules_text()["condition_questions"][key]


def chinese_date(day: dt.date) -> str:
    return f"{day.month}月{day.day}日"


def signed_date(order: Order) -> Optional[dt.date]:
    return order.signed_at.astimezone(SHANGHAI).date() if order.signed_at else None


def window_deadline(signed: dt.date) -> dt.date:
    """七日期间自签收次日开始起算 (暂行办法 第十条): signed on the 20th, the 7th day is the 27th."""
    return signed + dt.timedelta(days=WINDOW_DAYS)


def _decision(outcome: str, allowed: bool, kind: Optional[str], facts: Dict[str, str], **extra) -> Eligibility:
    text = rules_text()["explanations"][outcome].format(**facts)
    return Eligibility(outcome, allowed, kind, text, facts=facts, **extra)


def assess(
    order: Order,
    item: OrderItem,
    reason: str,
    today: dt.date,
    condition: Optional[Mapping[str, bool]] = None,
) -> Eligibility:
    """Whether `item` of `order` can be returned for `reason` on `today`, and on what basis."""
    facts = {"item": item.name, "item_id": item.item_id, "category": item.category, "today": chinese_date(today)}
    if order.status == OrderStatus.UNPAID:
        return _decision("cancel_unpaid", True, "cancel", facts)
    if order.status == OrderStatus.PAID:
        return _decision("cancel_paid", True, "cancel", facts)
    if order.status == OrderStatus.SHIPPED:
        return _decision("intercept", True, "intercept", facts)

    signed = signed_date(order)
    deadline = window_deadline(signed)
    facts.update(signed=chinese_date(signed), deadline=chinese_date(deadline))
    if reason in ReturnReason.SELLER_FAULT:
        return _seller_fault(today, deadline, facts)
    return _no_reason(order, item, today, deadline, condition or {}, facts)


def _seller_fault(today: dt.date, deadline: dt.date, facts: Dict[str, str]) -> Eligibility:
    basis = (cite(CONSUMER_LAW, 24),)
    if today <= deadline:
        return _decision("defect_return", True, "return", facts, citations=basis,
                         shipping_paid_by="seller", deadline=deadline)
    return _decision("exchange_or_repair", True, "exchange_or_repair", facts, citations=basis,
                     shipping_paid_by="seller", deadline=deadline)


def _no_reason(
    order: Order, item: OrderItem, today: dt.date, deadline: dt.date,
    condition: Mapping[str, bool], facts: Dict[str, str],
) -> Eligibility:
    exclusion = _EXCLUDED.get(item.item_class)
    if exclusion:
        return _decision(exclusion, False, None, facts, deadline=deadline,
                         citations=(cite(CONSUMER_LAW, 25), cite(SEVEN_DAY_RULES, 6)))
    if item.item_class == ItemClass.SEALED_MEDIA and condition.get("media_sealed") is False:
        return _decision("excluded_unsealed_media", False, None, facts, deadline=deadline,
                         citations=(cite(CONSUMER_LAW, 25), cite(SEVEN_DAY_RULES, 6)))
    if item.unsuitable_confirmed:
        return _decision("excluded_confirmed_unsuitable", False, None, facts, deadline=deadline,
                         citations=(cite(CONSUMER_LAW, 25), cite(SEVEN_DAY_RULES, 7)))
    if today > deadline:
        return _decision("window_passed", False, None, facts, deadline=deadline,
                         citations=(cite(CONSUMER_LAW, 25), cite(SEVEN_DAY_RULES, 10)))

    checks = condition_checks(item)
    missing = tuple(key for key in checks if key not in condition)
    if missing:
        return _decision("needs_condition", False, None, facts, deadline=deadline, questions=missing,
                         citations=(cite(SEVEN_DAY_RULES, 8),))
    failed = [key for key in checks if not condition[key]]
    if failed:
        problems = "、".join(rules_text()["condition_problems"][key] for key in failed)
        return _decision("not_intact", False, None, {**facts, "problems": problems}, deadline=deadline,
                         citations=(cite(SEVEN_DAY_RULES, 8), cite(SEVEN_DAY_RULES, 9)))

    insured = order.freight_insurance
    return _decision(
        "no_reason_return_insured" if insured else "no_reason_return", True, "return", facts,
        deadline=deadline,
        shipping_paid_by="seller" if insured else "consumer",
        citations=(cite(CONSUMER_LAW, 25), cite(SEVEN_DAY_RULES, 10), cite(SEVEN_DAY_RULES, 13),
                   cite(SEVEN_DAY_RULES, 18)),
    )
