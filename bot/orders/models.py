"""Plain data for orders, items, logistics and return requests (dates in Asia/Shanghai)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional, Tuple
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


class OrderStatus:
    UNPAID = "unpaid"
    PAID = "paid"  # paid, not yet shipped
    SHIPPED = "shipped"  # in transit
    DELIVERED = "delivered"
    ALL = (UNPAID, PAID, SHIPPED, DELIVERED)


class ItemClass:
    """Why an item may be outside 七日无理由 (暂行办法 第六条 / 第七条)."""

    NORMAL = "normal"
    CUSTOM_MADE = "custom_made"  # 消费者定作的
    PERISHABLE = "perishable"  # 鲜活易腐的
    DIGITAL_DOWNLOAD = "digital_download"  # 在线下载的数字化商品
    SEALED_MEDIA = "sealed_media"  # 音像制品、计算机软件 (excluded once unsealed)
    NEWSPAPER = "newspaper"  # 交付的报纸、期刊
    ALL = (NORMAL, CUSTOM_MADE, PERISHABLE, DIGITAL_DOWNLOAD, SEALED_MEDIA, NEWSPAPER)


class ReturnReason:
    NO_REASON = "no_reason"  # 七天无理由
    QUALITY = "quality"  # 质量问题
    WRONG_ITEM = "wrong_item"  # 发错货
    MISSING_PART = "missing_part"  # 少件
    TRANSIT_DAMAGE = "transit_damage"  # 运输破损
    NOT_AS_DESCRIBED = "not_as_described"  # 与描述不符
    OTHER = "other"  # 其他
    ALL = (NO_REASON, QUALITY, WRONG_ITEM, MISSING_PART, TRANSIT_DAMAGE, NOT_AS_DESCRIBED, OTHER)
    # Reasons where the goods themselves fall short: the seller's fault, 消法 第二十四条.
    SELLER_FAULT = (QUALITY, WRONG_ITEM, MISSING_PART, TRANSIT_DAMAGE, NOT_AS_DESCRIBED)


@dataclass(frozen=True)
class OrderItem:
    item_id: str
    name: str
    category: str  # product category, e.g. 服装鞋包
    price: float
    quantity: int = 1
    item_class: str = ItemClass.NORMAL
    # 暂行办法 第七条: the shopper confirmed at purchase that this item is 不宜退货.
    unsuitable_confirmed: bool = False


@dataclass(frozen=True)
class LogisticsEvent:
    time: dt.datetime
    description: str


@dataclass(frozen=True)
class Order:
    order_id: str
    customer_id: str
    phone: str
    status: str
    created_at: dt.datetime
    items: Tuple[OrderItem, ...]
    signed_at: Optional[dt.datetime] = None
    carrier: Optional[str] = None
    tracking_no: Optional[str] = None
    logistics: Tuple[LogisticsEvent, ...] = ()
    freight_insurance: bool = False  # 运费险: the store pays return shipping

    def item(self, item_id: str) -> Optional[OrderItem]:
        return next((i for i in self.items if i.item_id == item_id), None)


@dataclass(frozen=True)
class ReturnRequest:
    return_id: str
    order_id: str
    customer_id: str
    item_ids: Tuple[str, ...]
    reason: str
    kind: str  # "return", "exchange_or_repair", "cancel", "intercept"
    status: str  # "open", "received", "refunded", "closed"
    created_at: dt.datetime
    evidence: Tuple[str, ...] = ()
    description: str = ""
    condition: Dict[str, bool] = field(default_factory=dict)


def to_dict(value: Any) -> Dict[str, Any]:
    """JSON-ready dict of a model (datetimes as ISO strings)."""

    def convert(obj: Any) -> Any:
        if isinstance(obj, dt.datetime):
            return obj.isoformat()
        if isinstance(obj, (list, tuple)):
            return [convert(o) for o in obj]
        if isinstance(obj, dict):
            return {k: convert(v) for k, v in obj.items()}
        return obj

    return convert(asdict(value))


def _dt(value: Optional[str]) -> Optional[dt.datetime]:
    return dt.datetime.fromisoformat(value) if value else None


def order_from_dict(data: Dict[str, Any]) -> Order:
    return Order(
        order_id=data["order_id"],
        customer_id=data["customer_id"],
        phone=data["phone"],
        status=data["status"],
        created_at=_dt(data["created_at"]),
        items=tuple(OrderItem(**item) for item in data["items"]),
        signed_at=_dt(data.get("signed_at")),
        carrier=data.get("carrier"),
        tracking_no=data.get("tracking_no"),
        logistics=tuple(LogisticsEvent(_dt(e["time"]), e["description"]) for e in data.get("logistics", [])),
        freight_insurance=data.get("freight_insurance", False),
    )


def return_from_dict(data: Dict[str, Any]) -> ReturnRequest:
    return ReturnRequest(
        **{**data, "item_ids": tuple(data["item_ids"]), "evidence": tuple(data.get("evidence", ())),
           "created_at": _dt(data["created_at"])}
    )
