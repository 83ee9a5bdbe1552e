"""Return eligibility as the law defines it. Pure functions: no Rasa, Redis or HTTP.

七日无理由: 消费者权益保护法 第二十五条 and 网络购买商品七日无理由退货暂行办法 (notice within 7 days
of receipt, counted from the day after signing, 第十条; exclusions 第六条, and 第七条 goods only with
the shopper's per-purchase confirmation, 第二十条 / 实施条例 第十九条; 完好 第八条/第九条 judged by
the 第九条 product type, not the store category; gifts 第十二条; return shipping 第十八条; refund
within 7 days of receipt 第十三条). A window whose last day is a 法定休假日 may run on (民法典 第二百零三条):
such cases go to a person. Quality defects: 消费者权益保护法 第二十四条 (return within 7 days of
receipt, then exchange or repair; the seller pays transport); a wrong or short delivery is made
good by delivering the right goods (民法典 第五百七十七条, 第五百八十二条). Dates are calendar days in
Asia/Shanghai.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Dict, Mapping, Optional, Tuple

import yaml

from bot.knowledge.kb import Citation, cite
from bot.orders.models import (
    SHANGHAI, ItemClass, Order, OrderItem, OrderStatus, ProductType, ReturnReason, UnsuitableType,
)
from bot.paths import KNOWLEDGE_DIR

CONSUMER_LAW = "中华人民共和国消费者权益保护法"
SEVEN_DAY_RULES = "网络购买商品七日无理由退货暂行办法"
CIVIL_CODE = "中华人民共和国民法典"
WINDOW_DAYS = 7

# Excluded whatever their state (暂行办法 第六条（一）（二）).
_EXCLUDED = {
    ItemClass.CUSTOM_MADE: "excluded_custom_made",
    ItemClass.PERISHABLE: "excluded_perishable",
}
# Goods the store may cancel or intercept as a service only (no 七日无理由 right applies to them).
_SERVICE_ONLY = (ItemClass.CUSTOM_MADE, ItemClass.PERISHABLE)
# Answers that never make an item not 完好: a missing gift is paid for or returned (第十二条).
_NOT_INTACT_EXEMPT = ("gift_kept",)
# Reasons where the goods themselves are right but the wrong or too few were delivered.
_SHORT_DELIVERY = (ReturnReason.WRONG_ITEM, ReturnReason.MISSING_PART)


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
    """The questions that decide 完好 (暂行办法 第八条, 第九条), by the item's 第九条 product type;
    gifts (第十二条) are asked separately and never decide 完好."""
    checks: Tuple[str, ...] = ("complete",)
    if item.item_class == ItemClass.SEALED_MEDIA:
        checks += ("media_sealed",)
    elif item.item_class == ItemClass.DIGITAL_DOWNLOAD and item.used is None:
        checks += ("digital_unused",)
    goods = item.goods_type
    if goods in ProductType.SEALED:
        checks += ("seal_intact",)
    elif goods == ProductType.ELECTRONICS:
        checks += ("not_activated",)
    elif goods in ProductType.TAGGED:
        checks += ("tags_intact",)
    if item.gift:
        checks += ("gift_kept",)
    return checks


@lru_cache(maxsize=1)
def statutory_holidays() -> Tuple[Tuple[dt.date, dt.date], ...]:
    """法定休假日 ranges from knowledge/statutory_holidays.yml (maintained by operators)."""
    raw = yaml.safe_load((KNOWLEDGE_DIR / "statutory_holidays.yml").read_text(encoding="utf-8")) or {}
    return tuple((first, last) for year in raw.values() for first, last in (year or {}).values())


def holiday_end(day: dt.date) -> Optional[dt.date]:
    """The last day of the 法定休假日 that `day` falls in, or None."""
    for first, last in statutory_holidays():
        if first <= day <= last:
            return last
    return None


def condition_question(key: str) -> str:
    return rules_text()["condition_questions"][key]


def chinese_date(day: dt.date) -> str:
    return f"{day.month}月{day.day}日"


def signed_date(order: Order) -> Optional[dt.date]:
    return order.signed_at.astimezone(SHANGHAI).date() if order.signed_at else None


def window_deadline(signed: dt.date) -> dt.date:
    """七日期间自签收次日开始起算 (暂行办法 第十条): signed on the 20th, the 7th day is the 27th."""
    return signed + dt.timedelta(days=WINDOW_DAYS)


def _decision(outcome: str, allowed: bool, kind: Optional[str], facts: Dict[str, str], note: str = "",
              **extra) -> Eligibility:
    text = rules_text()["explanations"][outcome].format(**facts)
    for key in note.split():
        text += rules_text()["notes"][key].format(**facts)
    return Eligibility(outcome, allowed, kind, text, facts=facts, **extra)


def assess(
    order: Order,
    item: OrderItem,
    reason: str,
    today: dt.date,
    condition: Optional[Mapping[str, bool]] = None,
    notice: Optional[dt.date] = None,
) -> Eligibility:
    """Whether `item` of `order` can be returned for `reason` on `today`, and on what basis.

    `notice` is the day the shopper first gave notice of this return (暂行办法 第十条: the notice,
    not the chat, must fall in the window); `order.return_notice_at` is used when it is not given.
    """
    facts = {"item": item.name, "item_id": item.item_id, "category": item.category, "today": chinese_date(today)}
    service = "service_only" if item.item_class in _SERVICE_ONLY else ""
    if order.status == OrderStatus.UNPAID:
        return _decision("cancel_unpaid", True, "cancel", facts)
    if order.status == OrderStatus.PAID:
        return _decision("cancel_paid", True, "cancel", facts, note=service)
    if order.status == OrderStatus.SHIPPED:
        return _decision("intercept", True, "intercept", facts, note=service)

    signed = signed_date(order)
    deadline = window_deadline(signed)
    facts.update(signed=chinese_date(signed), deadline=chinese_date(deadline))
    if notice is None and order.return_notice_at is not None:
        notice = order.return_notice_at.astimezone(SHANGHAI).date()
    if notice is not None and (notice > today or notice < signed):
        notice = None  # not a notice about this delivery
    if notice is not None:
        facts["notice"] = chinese_date(notice)
    if reason in ReturnReason.SELLER_FAULT:
        return _seller_fault(reason, notice or today, deadline, facts)
    return _no_reason(order, item, today, notice, deadline, condition or {}, facts)


def _seller_fault(reason: str, day: dt.date, deadline: dt.date, facts: Dict[str, str]) -> Eligibility:
    basis = (cite(CONSUMER_LAW, 24),)
    if day <= deadline:
        return _decision("defect_return", True, "return", facts, citations=basis,
                         shipping_paid_by="seller", deadline=deadline)
    if reason in _SHORT_DELIVERY:
        return _decision("redeliver", True, "redeliver", facts, shipping_paid_by="seller", deadline=deadline,
                         citations=(cite(CIVIL_CODE, 577), cite(CIVIL_CODE, 582), cite(CONSUMER_LAW, 24)))
    return _decision("exchange_or_repair", True, "exchange_or_repair", facts, citations=basis,
                     shipping_paid_by="seller", deadline=deadline)


def _statutory_exclusion(item: OrderItem, condition: Mapping[str, bool]) -> Optional[str]:
    """The 暂行办法 第六条 exclusion that applies to `item`, if any."""
    if item.item_class in _EXCLUDED:
        return _EXCLUDED[item.item_class]
    if item.item_class == ItemClass.SEALED_MEDIA and condition.get("media_sealed") is False:
        return "excluded_unsealed_media"
    if item.item_class == ItemClass.DIGITAL_DOWNLOAD and (
        item.used is True or (item.used is None and condition.get("digital_unused") is False)
    ):
        return "excluded_digital_download"  # 在线下载或者消费者拆封的数字化商品 only
    if item.item_class == ItemClass.NEWSPAPER and item.used is not False:
        return "excluded_newspaper"  # 交付的报纸、期刊 only
    return None


def _no_reason(
    order: Order, item: OrderItem, today: dt.date, notice: Optional[dt.date], deadline: dt.date,
    condition: Mapping[str, bool], facts: Dict[str, str],
) -> Eligibility:
    exclusion = _statutory_exclusion(item, condition)
    if exclusion:
        return _decision(exclusion, False, None, facts, deadline=deadline,
                         citations=(cite(CONSUMER_LAW, 25), cite(SEVEN_DAY_RULES, 6)))
    if item.unsuitable_confirmed and item.unsuitable_type in UnsuitableType.ALL:
        return _decision("excluded_confirmed_unsuitable", False, None, facts, deadline=deadline,
                         citations=(cite(CONSUMER_LAW, 25), cite(SEVEN_DAY_RULES, 7), cite(SEVEN_DAY_RULES, 20)))
    day = notice or today  # 第十条: the notice must be given within the window
    if day > deadline:
        holiday_last = holiday_end(deadline)
        if holiday_last is not None and day <= holiday_last + dt.timedelta(days=1):
            facts["extended"] = chinese_date(holiday_last + dt.timedelta(days=1))
            return _decision("window_holiday_review", False, None, facts, deadline=deadline,
                             citations=(cite(SEVEN_DAY_RULES, 10), cite(CIVIL_CODE, 203)))
        return _decision("window_passed", False, None, facts, deadline=deadline,
                         citations=(cite(CONSUMER_LAW, 25), cite(SEVEN_DAY_RULES, 10)))

    checks = condition_checks(item)
    missing = tuple(key for key in checks if key not in condition)
    if missing:
        return _decision("needs_condition", False, None, facts, deadline=deadline, questions=missing,
                         citations=(cite(SEVEN_DAY_RULES, 8),))
    failed = [key for key in checks if not condition[key] and key not in _NOT_INTACT_EXEMPT]
    if failed:
        problems = "、".join(rules_text()["condition_problems"][key] for key in failed)
        return _decision("not_intact", False, None, {**facts, "problems": problems}, deadline=deadline,
                         citations=(cite(SEVEN_DAY_RULES, 8), cite(SEVEN_DAY_RULES, 9)))

    insured = order.freight_insurance
    citations = (cite(CONSUMER_LAW, 25), cite(SEVEN_DAY_RULES, 10), cite(SEVEN_DAY_RULES, 13),
                 cite(SEVEN_DAY_RULES, 18))
    note = "notice_in_window" if notice is not None and today > deadline else ""
    if "gift_kept" in checks and not condition["gift_kept"]:
        note += " gift_missing_priced" if item.gift_price is not None else " gift_missing"
        facts = {**facts, "gift": item.gift or "赠品", "gift_price": f"{item.gift_price or 0:g}"}
        citations += (cite(SEVEN_DAY_RULES, 12),)
    elif item.gift:
        note += " gift_return"
        facts = {**facts, "gift": item.gift}
        citations += (cite(SEVEN_DAY_RULES, 12),)
    return _decision(
        "no_reason_return_insured" if insured else "no_reason_return", True, "return", facts,
        note=note, deadline=deadline,
        # With 运费险 the insurer pays towards return shipping per its terms; the shopper still ships.
        shipping_paid_by="insurance" if insured else "consumer",
        citations=citations,
    )
