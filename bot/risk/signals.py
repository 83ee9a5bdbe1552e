"""What a rights signal is about, read from what the shopper said and the order. Pure.

The actions (actions/risk_signals.py) know the text of a complaint and, when the conversation has
one, its order; the detector wants a reason and a SKU, merchant and category to count by. These
functions bridge the two: which kind of safety incident a report describes, what a complaint is
about, and which item of the order the shopper means.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

# Safety incidents by kind, checked in this order: the hazard the product caused comes before the
# harm it did ("着火了，手也烫伤了" is a fire). The words cover knowledge/escalation.yml's `safety`
# list (tests/risk: every one of them has a kind here).
SAFETY_REASONS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("fire", ("起火", "着火", "冒烟", "爆炸", "自燃", "烧焦", "冒火", "火花")),
    ("shock", ("触电", "漏电", "电到", "电击", "麻手")),
    # adverse reactions to what was eaten or put on the skin
    ("poisoning", ("食物中毒", "中毒", "拉肚子", "上吐下泻", "吃坏", "呕吐", "过敏")),
    ("injury", ("受伤", "烫伤", "烧伤", "割伤", "划伤", "流血", "住院", "送医", "急诊", "误吞", "吞了",
                "卡喉咙", "窒息", "骨折", "夹伤", "砸伤")),
)
OTHER = "other"

# What a complaint is about; the first topic whose words appear wins.
COMPLAINT_REASONS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("counterfeit", ("假货", "假的", "仿品", "高仿", "不是正品", "山寨", "冒牌")),
    ("quality", ("质量", "坏了", "坏的", "故障", "破损", "开裂", "掉色", "起球", "不能用", "用不了", "异味", "变质", "过期")),
    ("not_as_described", ("不符", "货不对板", "虚假宣传", "描述", "色差", "缩水", "夸大")),
    ("delivery", ("物流", "快递", "没收到", "未收到", "丢件", "发货慢", "不发货", "驿站", "签收")),
    ("price", ("价格", "涨价", "先涨后降", "优惠券", "价保", "差价", "多收", "扣款")),
    ("refund", ("退款", "退钱", "不给退", "拒绝退")),
    ("service", ("客服", "态度", "不理", "敷衍", "推诿")),
)
COMPLAINT_OTHER = "other"


def _first_match(text: str, table: Sequence[Tuple[str, Sequence[str]]], default: str) -> str:
    for reason, words in table:
        if any(word in text for word in words):
            return reason
    return default


def safety_reason(text: Optional[str]) -> str:
    """fire, shock, poisoning, injury or other."""
    return _first_match(text or "", SAFETY_REASONS, OTHER)


def complaint_reason(text: Optional[str]) -> str:
    """counterfeit, quality, not_as_described, delivery, price, refund, service or other."""
    return _first_match(text or "", COMPLAINT_REASONS, COMPLAINT_OTHER)


def _core(name: str) -> str:
    """The product name without its size or count ("进口车厘子 2斤" -> "进口车厘子")."""
    return re.sub(r"[\s\d]+.*$", "", name) or name


def _overlap(text: str, name: str) -> int:
    """The longest run of the item's name that the text contains (0 when under two characters)."""
    core = _core(name)
    for size in range(len(core), 1, -1):
        if any(core[i:i + size] in text for i in range(len(core) - size + 1)):
            return size
    return 0


def named_item(text: Optional[str], items: Sequence[Mapping[str, Any]]) -> Optional[Mapping[str, Any]]:
    """The item the text names ("电饭煲着火了" -> 智能电饭煲), or None.

    The item whose name shares the longest run (two characters at least) with the text wins; a
    tie between different SKUs (「T恤」 of 定制T恤 and 纯棉T恤) names none of them.
    """
    if not items:
        return None
    scored = sorted(((_overlap(text or "", str(i.get("name") or "")), n) for n, i in enumerate(items)), reverse=True)
    best, index = scored[0]
    tied = [n for score, n in scored if score == best]
    if best >= 2 and len({items[n].get("sku") or items[n].get("name") for n in tied}) == 1:
        return items[index]
    return None


def pick_item(text: Optional[str], items: Sequence[Mapping[str, Any]]) -> Optional[Mapping[str, Any]]:
    """The item the text names, else the only item, else None."""
    return named_item(text, items) or (items[0] if len(items) == 1 else None)


def order_naming(text: Optional[str], orders: Sequence[Mapping[str, Any]]) -> Optional[Mapping[str, Any]]:
    """The first order (callers pass them newest first) with an item the text names: a shopper
    who says 「我买的电饭煲着火了」 without giving an order number means the 电饭煲 they bought."""
    return next((o for o in orders if named_item(text, o.get("items") or []) is not None), None)


def subject(order: Optional[Mapping[str, Any]], text: Optional[str] = None) -> Dict[str, Optional[str]]:
    """The SKU, merchant and category a signal is about: the item the text names (or the only
    one); failing that, whatever all the order's items share (one merchant, one category)."""
    items = list((order or {}).get("items") or [])
    item = pick_item(text, items)
    if item is not None:
        return {"sku": item.get("sku"), "merchant": item.get("merchant"), "category": item.get("category")}

    def shared(field: str) -> Optional[str]:
        values = {i.get(field) for i in items}
        return values.pop() if len(values) == 1 else None

    return {"sku": None, "merchant": shared("merchant"), "category": shared("category")}
