"""Demo orders for the embedded order system, with dates relative to today (Asia/Shanghai).

Two demo customers; every status and every 七日无理由 exclusion appears, plus 第七条 goods the
shopper confirmed as 不宜退货 at purchase, an item with a gift, items whose 第九条 product type differs
from their store category, and orders on both sides of the 7-day boundary.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import List, Tuple

from bot.orders.models import (
    SHANGHAI, ItemClass, LogisticsEvent, Order, OrderItem, OrderStatus, ProductType, UnsuitableType,
)

DEMO_CUSTOMERS = {
    "c1001": {"name": "王女士", "phone": "13800001234", "wechat_openid": "oDemoOpenId0001"},
    "c1002": {"name": "李先生", "phone": "13900005678", "wechat_openid": "oDemoOpenId0002"},
}


# The demo catalogue's SKUs and the merchants (平台内经营者) that sell them: what the risk early
# warning counts complaints and returns by, and how a SKU's buyers are found to be warned (issue 15).
DEMO_MERCHANTS = {
    "m-huayi": "华艺服饰旗舰店", "m-meizhuang": "美妆优选店", "m-xianguo": "鲜果直送",
    "m-shuma": "数码先锋专营店", "m-jiadian": "好家电官方旗舰店", "m-bangong": "办公伙伴",
    "m-dingzhi": "印象定制工坊", "m-baokan": "晚报发行中心",
}
DEMO_CATALOGUE = {  # product name -> (sku, merchant)
    "碎花连衣裙": ("SKU-10001", "m-huayi"), "哑光口红": ("SKU-20001", "m-meizhuang"),
    "进口车厘子 2斤": ("SKU-30001", "m-xianguo"), "降噪蓝牙耳机": ("SKU-40001", "m-shuma"),
    "快充充电器": ("SKU-40002", "m-shuma"), "跑步运动鞋": ("SKU-10002", "m-huayi"),
    "运动袜 3双装": ("SKU-10003", "m-huayi"), "游戏光盘": ("SKU-40003", "m-shuma"),
    "无线鼠标": ("SKU-50001", "m-bangong"), "智能电饭煲": ("SKU-60001", "m-jiadian"),
    "保温杯": ("SKU-60002", "m-jiadian"), "轻薄羽绒服": ("SKU-10004", "m-huayi"),
    "羊毛围巾": ("SKU-10005", "m-huayi"), "护眼台灯": ("SKU-60003", "m-jiadian"),
    "电子书兑换码": ("SKU-40004", "m-shuma"), "刻字钢笔": ("SKU-70001", "m-dingzhi"),
    "晚报季度订阅": ("SKU-80001", "m-baokan"), "机械键盘": ("SKU-50002", "m-bangong"),
    "桌垫": ("SKU-50003", "m-bangong"), "定制T恤": ("SKU-70002", "m-dingzhi"),
    "纯棉T恤": ("SKU-10006", "m-huayi"),
}


def _catalogued(order: Order) -> Order:
    items = tuple(dataclasses.replace(i, sku=DEMO_CATALOGUE[i.name][0], merchant=DEMO_CATALOGUE[i.name][1])
                  if i.name in DEMO_CATALOGUE and i.sku is None else i for i in order.items)
    return dataclasses.replace(order, items=items)


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
    return [_catalogued(order) for order in _orders(today, delivered, shipped_day, paid_day)]


def _orders(today: dt.date, delivered, shipped_day: dt.date, paid_day: dt.date) -> List[Order]:
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
