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


class ProductType:
    """The product types of 暂行办法 第九条, which decide how 完好 is judged (not the store category)."""

    FOOD = "food"  # 食品（含保健食品）
    COSMETICS = "cosmetics"  # 化妆品
    MEDICAL_DEVICE = "medical_device"  # 医疗器械
    FAMILY_PLANNING = "family_planning"  # 计生用品
    ELECTRONICS = "electronics"  # 电子电器类
    APPAREL = "apparel"  # 服装、鞋帽、箱包
    TOYS = "toys"  # 玩具
    HOME = "home"  # 家纺、家居类
    OTHER = "other"
    SEALED = (FOOD, COSMETICS, MEDICAL_DEVICE, FAMILY_PLANNING)  # 第九条（一）
    TAGGED = (APPAREL, TOYS, HOME)  # 第九条（三）
    ALL = (FOOD, COSMETICS, MEDICAL_DEVICE, FAMILY_PLANNING, ELECTRONICS, APPAREL, TOYS, HOME, OTHER)
    # Only a default for items the order system sends without a product type (older data):
    # the store category is a shop-front grouping, not a 第九条 type.
    BY_CATEGORY = {
        "食品生鲜": FOOD, "美妆个护": COSMETICS, "手机数码": ELECTRONICS, "电脑办公": ELECTRONICS,
        "家用电器": ELECTRONICS, "服装鞋包": APPAREL, "母婴玩具": TOYS, "家居家装": HOME,
    }


class UnsuitableType:
    """The kinds of goods of 暂行办法 第七条 that MAY be kept out of 七日无理由 — only together with
    the shopper's own, prominent, per-purchase confirmation (第二十条第二款, 实施条例 第十九条)."""

    SAFETY_OR_QUALITY_ON_OPENING = "safety_or_quality_on_opening"  # 第七条（一）
    VALUE_LOSS_ON_ACTIVATION = "value_loss_on_activation"  # 第七条（二）
    NEAR_EXPIRY_OR_FLAWED = "near_expiry_or_flawed"  # 第七条（三）, 销售时已明示
    ALL = (SAFETY_OR_QUALITY_ON_OPENING, VALUE_LOSS_ON_ACTIVATION, NEAR_EXPIRY_OR_FLAWED)


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
    # The shopper confirmed 不宜退货 for this purchase in a prominent, non-default step (暂行办法
    # 第二十条, 实施条例 第十九条). Excludes the item only together with a 第七条 `unsuitable_type`.
    unsuitable_confirmed: bool = False
    unsuitable_type: Optional[str] = None  # an UnsuitableType: goods of 暂行办法 第七条
    product_type: Optional[str] = None  # a ProductType (暂行办法 第九条); None: guessed from category
    # Digital goods: downloaded / redeemed / unsealed by the shopper; newspapers and periodicals:
    # handed over (交付). None: not known (digital goods: asked; newspapers: treated as handed over).
    used: Optional[bool] = None
    gift: Optional[str] = None  # the gift that came with this item (暂行办法 第十二条)
    gift_price: Optional[float] = None  # the gift's price as marked beforehand
    # Which product and which seller: the keys the risk early warning counts signals by (issue 15).
    sku: Optional[str] = None
    merchant: Optional[str] = None  # the shop or merchant id that sold it (平台内经营者)

    @property
    def goods_type(self) -> str:
        """The 第九条 product type, from `product_type` or, failing that, the store category."""
        return self.product_type or ProductType.BY_CATEGORY.get(self.category, ProductType.OTHER)


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
    freight_insurance: bool = False  # 运费险: insurance pays towards return shipping, per its terms
    # When the shopper first gave notice of a return (暂行办法 第十条), if the order system knows.
    return_notice_at: Optional[dt.datetime] = None

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
        return_notice_at=_dt(data.get("return_notice_at")),
    )


def return_from_dict(data: Dict[str, Any]) -> ReturnRequest:
    return ReturnRequest(
        **{**data, "item_ids": tuple(data["item_ids"]), "evidence": tuple(data.get("evidence", ())),
           "created_at": _dt(data["created_at"])}
    )
