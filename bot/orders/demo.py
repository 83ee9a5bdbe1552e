"""Demo orders for the embedded order system, with dates relative to today (Asia/Shanghai).

Two demo customers; every status and every 七日无理由 exclusion appears, plus 第七条 goods the
shopper confirmed as 不宜退货 at purchase, an item with a gift, items whose 第九条 product type differs
from their store category, and orders on both sides of the 7-day boundary.
"""

from __future__ import annotations

import datetime as dt
from typing import List, Tuple

from bot.orders.models import (
    SHANGHAI, ItemClass, LogisticsEvent, Order, OrderItem, OrderStatus, ProductType, UnsuitableType,
)

DEMO_CUSTOMERS = {
    "c1001": {"name": "王女士", "phone": "13800001234", "wechat_openid": "oDemoOpenId0001"},
    "c1002": {"name": "李先生", "phone": "13900005678", "wechat_openid": "oDemoOpenId0002"},
}


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


def _order_id(created: dt.date, seq: int) -> str:
    return f"{created:%Y%m%d}{seq:08d}"


def _track(created: dt.date, days: int, signed: bool) -> Tuple[LogisticsEvent, ...]:
    events = [
        LogisticsEvent(_at(created, 18), "商家已发货，中通快递已揽收"),
        LogisticsEvent(_at(created + dt.timedelta(days=1), 6), "快件已到达【杭州转运中心】"),
    ]
    if days >= 2:
        events.append(LogisticsEvent(_at(created + dt.timedelta(days=2), 9), "快件已到达【上海浦东新区营业部】，正在派送"))
    if signed:
        events.append(LogisticsEvent(_at(created + dt.timedelta(days=2), 15, 20), "已签收，签收人：本人"))
    return tuple(events)


def demo_orders(today: dt.date) -> List[Order]:
    def delivered(days_ago: int, seq: int, customer: str, items, insured: bool = False) -> Order:
        signed_day = today - dt.timedelta(days=days_ago)
        created = signed_day - dt.timedelta(days=2)
        return Order(
            _order_id(created, seq), customer, DEMO_CUSTOMERS[customer]["phone"], OrderStatus.DELIVERED,
            _at(created, 10), tuple(items), signed_at=_at(signed_day, 15, 20), carrier="中通快递",
            tracking_no=f"ZT78{seq:010d}", logistics=_track(created, 2, True), freight_insurance=insured,
        )

    shipped_day = today - dt.timedelta(days=1)
    paid_day = today
    return [
        delivered(2, 11, "c1001", [
            OrderItem("i1", "碎花连衣裙", "服装鞋包", 299.0),
            OrderItem("i2", "哑光口红", "美妆个护", 189.0, unsuitable_confirmed=True,
                      unsuitable_type=UnsuitableType.SAFETY_OR_QUALITY_ON_OPENING),
            OrderItem("i3", "进口车厘子 2斤", "食品生鲜", 159.0, item_class=ItemClass.PERISHABLE),
        ]),
        delivered(7, 12, "c1001", [
            OrderItem("i1", "降噪蓝牙耳机", "手机数码", 899.0),
            OrderItem("i2", "快充充电器", "手机数码", 99.0),
        ]),
        delivered(8, 13, "c1001", [
            OrderItem("i1", "跑步运动鞋", "服装鞋包", 459.0),
            OrderItem("i2", "运动袜 3双装", "服装鞋包", 39.0),
        ]),
        delivered(3, 14, "c1001", [
            OrderItem("i1", "游戏光盘", "数字商品", 299.0, item_class=ItemClass.SEALED_MEDIA),
            OrderItem("i2", "无线鼠标", "电脑办公", 129.0, gift="鼠标垫", gift_price=19.0),
        ], insured=True),
        delivered(40, 15, "c1001", [
            OrderItem("i1", "智能电饭煲", "家用电器", 599.0),
            OrderItem("i2", "保温杯", "家居家装", 89.0),
        ]),
        Order(_order_id(shipped_day, 16), "c1001", DEMO_CUSTOMERS["c1001"]["phone"], OrderStatus.SHIPPED,
              _at(shipped_day, 9), (OrderItem("i1", "轻薄羽绒服", "服装鞋包", 699.0),
                                    OrderItem("i2", "羊毛围巾", "服装鞋包", 159.0)),
              carrier="中通快递", tracking_no="ZT780000000016", logistics=_track(shipped_day, 1, False)),
        Order(_order_id(paid_day, 17), "c1001", DEMO_CUSTOMERS["c1001"]["phone"], OrderStatus.PAID,
              _at(paid_day, 8), (OrderItem("i1", "护眼台灯", "家居家装", 239.0, product_type=ProductType.ELECTRONICS),
                                 OrderItem("i2", "电子书兑换码", "数字商品", 30.0, item_class=ItemClass.DIGITAL_DOWNLOAD))),
        Order(_order_id(paid_day, 18), "c1001", DEMO_CUSTOMERS["c1001"]["phone"], OrderStatus.UNPAID,
              _at(paid_day, 8, 30), (OrderItem("i1", "刻字钢笔", "定制商品", 268.0, item_class=ItemClass.CUSTOM_MADE),
                                     OrderItem("i2", "晚报季度订阅", "报纸期刊", 90.0, item_class=ItemClass.NEWSPAPER))),
        delivered(1, 21, "c1002", [
            OrderItem("i1", "机械键盘", "电脑办公", 399.0),
            OrderItem("i2", "桌垫", "电脑办公", 49.0),
        ]),
        delivered(5, 22, "c1002", [
            OrderItem("i1", "定制T恤", "定制商品", 129.0, item_class=ItemClass.CUSTOM_MADE),
            OrderItem("i2", "纯棉T恤", "服装鞋包", 79.0),
        ]),
    ]
