"""Table-driven tests of the return rules, including the boundary days."""

import datetime as dt

import pytest

from bot.orders.eligibility import assess, window_deadline
from bot.orders.models import SHANGHAI, ItemClass, Order, OrderItem, OrderStatus, ReturnReason

SIGNED = dt.datetime(2026, 11, 20, 21, 30, tzinfo=SHANGHAI)
DAY = {n: dt.date(2026, 11, 20) + dt.timedelta(days=n) for n in range(0, 12)}
INTACT = {"complete": True, "tags_intact": True, "seal_intact": True, "not_activated": True, "media_sealed": True}

DRESS = OrderItem("i1", "连衣裙", "服装鞋包", 299.0)
PHONE = OrderItem("i2", "手机", "手机数码", 2999.0)
CAKE = OrderItem("i3", "生日蛋糕", "食品生鲜", 199.0, item_class=ItemClass.PERISHABLE)
RING = OrderItem("i4", "刻字戒指", "定制商品", 520.0, item_class=ItemClass.CUSTOM_MADE)
EBOOK = OrderItem("i5", "电子书兑换码", "数字商品", 30.0, item_class=ItemClass.DIGITAL_DOWNLOAD)
PAPER = OrderItem("i6", "晚报季度订阅", "报纸期刊", 90.0, item_class=ItemClass.NEWSPAPER)
GAME = OrderItem("i7", "游戏光盘", "数字商品", 299.0, item_class=ItemClass.SEALED_MEDIA)
LIPSTICK = OrderItem("i8", "口红", "美妆个护", 199.0, unsuitable_confirmed=True)


def order(status=OrderStatus.DELIVERED, signed=SIGNED, insured=False, items=(DRESS,)):
    return Order("2026111800000001", "c1", "13800001234", status,
                 dt.datetime(2026, 11, 18, tzinfo=SHANGHAI), tuple(items),
                 signed_at=signed if status == OrderStatus.DELIVERED else None, freight_insurance=insured)


def lines(decision):
    return [c.line for c in decision.citations]


def test_window_counts_from_the_day_after_signing():
    assert window_deadline(dt.date(2026, 11, 20)) == dt.date(2026, 11, 27)


@pytest.mark.parametrize(
    "item, reason, today, condition, outcome, allowed, kind, shipping",
    [
        # 七日无理由: day 7 is in, day 8 is out (signed late on the 20th: the clock starts on the 21st).
        (DRESS, ReturnReason.NO_REASON, DAY[0], INTACT, "no_reason_return", True, "return", "consumer"),
        (DRESS, ReturnReason.NO_REASON, DAY[7], INTACT, "no_reason_return", True, "return", "consumer"),
        (DRESS, ReturnReason.NO_REASON, DAY[8], INTACT, "window_passed", False, None, None),
        (DRESS, ReturnReason.OTHER, DAY[3], INTACT, "no_reason_return", True, "return", "consumer"),
        # 完好 must be confirmed first, and decides the outcome.
        (DRESS, ReturnReason.NO_REASON, DAY[2], {}, "needs_condition", False, None, None),
        (DRESS, ReturnReason.NO_REASON, DAY[2], {**INTACT, "tags_intact": False}, "not_intact", False, None, None),
        (PHONE, ReturnReason.NO_REASON, DAY[2], {**INTACT, "not_activated": False}, "not_intact", False, None, None),
        # The four statutory exclusions and the 不宜退货 confirmation.
        (CAKE, ReturnReason.NO_REASON, DAY[1], INTACT, "excluded_perishable", False, None, None),
        (RING, ReturnReason.NO_REASON, DAY[1], INTACT, "excluded_custom_made", False, None, None),
        (EBOOK, ReturnReason.NO_REASON, DAY[1], INTACT, "excluded_digital_download", False, None, None),
        (PAPER, ReturnReason.NO_REASON, DAY[1], INTACT, "excluded_newspaper", False, None, None),
        (GAME, ReturnReason.NO_REASON, DAY[1], {**INTACT, "media_sealed": False}, "excluded_unsealed_media", False, None, None),
        (GAME, ReturnReason.NO_REASON, DAY[1], INTACT, "no_reason_return", True, "return", "consumer"),
        (LIPSTICK, ReturnReason.NO_REASON, DAY[1], INTACT, "excluded_confirmed_unsuitable", False, None, None),
        # Quality and other seller faults (消法 第二十四条): return within 7 days, then exchange or repair.
        (DRESS, ReturnReason.QUALITY, DAY[7], {}, "defect_return", True, "return", "seller"),
        (DRESS, ReturnReason.QUALITY, DAY[8], {}, "exchange_or_repair", True, "exchange_or_repair", "seller"),
        (CAKE, ReturnReason.TRANSIT_DAMAGE, DAY[1], {}, "defect_return", True, "return", "seller"),
        (RING, ReturnReason.WRONG_ITEM, DAY[30 % 12], {}, "defect_return", True, "return", "seller"),
        (PHONE, ReturnReason.NOT_AS_DESCRIBED, DAY[11], {}, "exchange_or_repair", True, "exchange_or_repair", "seller"),
        (DRESS, ReturnReason.MISSING_PART, DAY[2], {}, "defect_return", True, "return", "seller"),
    ],
)
def test_delivered_orders(item, reason, today, condition, outcome, allowed, kind, shipping):
    decision = assess(order(items=(item,)), item, reason, today, condition)
    assert (decision.outcome, decision.allowed, decision.kind, decision.shipping_paid_by) == (
        outcome, allowed, kind, shipping)
    assert decision.explanation and "{" not in decision.explanation


def test_explanation_names_the_dates():
    decision = assess(order(), DRESS, ReturnReason.NO_REASON, DAY[8], INTACT)
    assert decision.explanation.startswith("您于11月20日签收，七日无理由退货期限已于11月27日届满")
    assert lines(decision) == ["《中华人民共和国消费者权益保护法》第二十五条", "《网络购买商品七日无理由退货暂行办法》第十条"]


def test_accepted_return_cites_window_refund_and_shipping_rules():
    decision = assess(order(), DRESS, ReturnReason.NO_REASON, DAY[7], INTACT)
    assert "期限至11月27日" in decision.explanation
    assert lines(decision) == [
        "《中华人民共和国消费者权益保护法》第二十五条",
        "《网络购买商品七日无理由退货暂行办法》第十条",
        "《网络购买商品七日无理由退货暂行办法》第十三条",
        "《网络购买商品七日无理由退货暂行办法》第十八条",
    ]
    assert decision.citations[2].text.startswith("第十三条 消费者退回的商品完好的")


def test_freight_insurance_moves_return_shipping_to_the_store():
    decision = assess(order(insured=True), DRESS, ReturnReason.NO_REASON, DAY[3], INTACT)
    assert decision.shipping_paid_by == "seller" and "运费险" in decision.explanation


def test_condition_questions_follow_the_category():
    assert assess(order(), DRESS, "no_reason", DAY[1], {}).questions == ("complete", "tags_intact")
    assert assess(order(items=(PHONE,)), PHONE, "no_reason", DAY[1], {"complete": True}).questions == ("not_activated",)


def test_quality_return_cites_article_24():
    assert lines(assess(order(), DRESS, ReturnReason.QUALITY, DAY[9], {})) == ["《中华人民共和国消费者权益保护法》第二十四条"]


@pytest.mark.parametrize(
    "status, outcome, kind",
    [(OrderStatus.UNPAID, "cancel_unpaid", "cancel"), (OrderStatus.PAID, "cancel_paid", "cancel"),
     (OrderStatus.SHIPPED, "intercept", "intercept")],
)
def test_orders_not_yet_delivered(status, outcome, kind):
    decision = assess(order(status=status), DRESS, ReturnReason.NO_REASON, DAY[1])
    assert (decision.outcome, decision.allowed, decision.kind) == (outcome, True, kind)


def test_signing_just_before_midnight_shanghai_counts_as_that_day():
    utc_late = dt.datetime(2026, 11, 20, 15, 59, tzinfo=dt.timezone.utc)  # 23:59 in Shanghai
    decision = assess(order(signed=utc_late), DRESS, "no_reason", DAY[7], INTACT)
    assert decision.allowed and decision.facts["deadline"] == "11月27日"
