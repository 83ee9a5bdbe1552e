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
        (EBOOK, ReturnReason.NO_REASON, DAY[1], {**INTACT, "digital_unused": False}, "excluded_digital_download", False, None, None),
        (PAPER, ReturnReason.NO_REASON, DAY[1], INTACT, "excluded_newspaper", False, None, None),
        (GAME, ReturnReason.NO_REASON, DAY[1], {**INTACT, "media_sealed": False}, "excluded_unsealed_media", False, None, None),
        (GAME, ReturnReason.NO_REASON, DAY[1], INTACT, "no_reason_return", True, "return", "consumer"),
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


def test_freight_insurance_pays_per_its_terms_not_the_whole_shipping():
    decision = assess(order(insured=True), DRESS, ReturnReason.NO_REASON, DAY[3], INTACT)
    assert decision.shipping_paid_by == "insurance" and "运费险" in decision.explanation
    assert "按其条款" in decision.explanation and "运费由保险承担" not in decision.explanation


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


# -- issue 14: the independent legal review ---------------------------------------------------
# Items are built inside the test (lambdas) so each case fails on its own on an engine without
# the new fields.
NOTICE = {**INTACT, "gift_kept": True, "digital_unused": True}
HOLIDAY_SIGNED = dt.datetime(2026, 9, 24, 12, 0, tzinfo=SHANGHAI)  # day 7 of the window: 10月1日 (国庆节)


def _gift_dress():
    return OrderItem("i1", "连衣裙", "服装鞋包", 299.0, gift="丝巾", gift_price=39.0)


def _lamp():
    return OrderItem("i9", "护眼台灯", "家居家装", 239.0, product_type="electronics")


def _formula():
    return OrderItem("i10", "婴儿奶粉", "母婴玩具", 268.0, product_type="food")


def _flagged_tshirt():
    return OrderItem("i11", "纯棉T恤", "服装鞋包", 79.0, unsuitable_confirmed=True)


def _confirmed_lipstick():
    return OrderItem("i8", "口红", "美妆个护", 199.0, unsuitable_confirmed=True,
                     unsuitable_type="safety_or_quality_on_opening")


def _typed_unconfirmed_lipstick():
    return OrderItem("i8", "口红", "美妆个护", 199.0, unsuitable_type="safety_or_quality_on_opening")


def _undelivered_paper():
    return OrderItem("i6", "晚报季度订阅", "报纸期刊", 90.0, item_class=ItemClass.NEWSPAPER, used=False)


def _unused_ebook():
    return OrderItem("i5", "电子书兑换码", "数字商品", 30.0, item_class=ItemClass.DIGITAL_DOWNLOAD, used=False)


def _order_for(item, signed=SIGNED, notice=None):
    kwargs = {"return_notice_at": notice} if notice else {}
    return Order("2026111800000001", "c1", "13800001234", OrderStatus.DELIVERED,
                 dt.datetime(2026, 11, 18, tzinfo=SHANGHAI), (item,), signed_at=signed, **kwargs)


@pytest.mark.parametrize(
    "make, reason, today, condition, notice, outcome, allowed, kind",
    [
        # 1. A missing gift does not break 完好 (第八条); the return goes ahead (第十二条).
        (_gift_dress, "no_reason", DAY[2], {**INTACT, "gift_kept": False}, None, "no_reason_return", True, "return"),
        # 3. Checks by 第九条 product type, not by store category.
        (_lamp, "no_reason", DAY[2], {**INTACT, "tags_intact": False}, None, "no_reason_return", True, "return"),
        (_formula, "no_reason", DAY[2], {**INTACT, "seal_intact": False, "tags_intact": True}, None,
         "not_intact", False, None),
        # 4. 不宜退货 needs a 第七条 type AND the per-purchase confirmation.
        (_flagged_tshirt, "no_reason", DAY[2], INTACT, None, "no_reason_return", True, "return"),
        (_typed_unconfirmed_lipstick, "no_reason", DAY[2], INTACT, None, "no_reason_return", True, "return"),
        (_confirmed_lipstick, "no_reason", DAY[2], INTACT, None, "excluded_confirmed_unsuitable", False, None),
        # 5. The notice, not the chat, must fall within the window; a holiday day 7 goes to a person.
        (lambda: DRESS, "no_reason", DAY[9], INTACT, DAY[6], "no_reason_return", True, "return"),
        (lambda: DRESS, "no_reason", DAY[9], INTACT, DAY[8], "window_passed", False, None),
        (lambda: DRESS, "no_reason", dt.date(2026, 10, 3), INTACT, "holiday", "window_holiday_review", False, None),
        # 6. Only 交付的 newspapers and downloaded / unsealed digital goods are excluded.
        (_undelivered_paper, "no_reason", DAY[2], INTACT, None, "no_reason_return", True, "return"),
        (_unused_ebook, "no_reason", DAY[2], INTACT, None, "no_reason_return", True, "return"),
        # 6. A wrong or short delivery after 7 days: deliver the right goods, not 更换或修理.
        (lambda: DRESS, "wrong_item", DAY[10], {}, None, "redeliver", True, "redeliver"),
        (lambda: DRESS, "missing_part", DAY[10], {}, None, "redeliver", True, "redeliver"),
    ],
)
def test_legal_review_cases(make, reason, today, condition, notice, outcome, allowed, kind):
    item = make()
    signed = HOLIDAY_SIGNED if notice == "holiday" else SIGNED
    notice_day = None if notice == "holiday" else notice
    decision = assess(_order_for(item, signed), item, reason, today, condition, notice=notice_day)
    assert (decision.outcome, decision.allowed, decision.kind) == (outcome, allowed, kind)
    assert decision.explanation and "{" not in decision.explanation
    assert decision.citations and decision.deadline is not None


def test_missing_gift_is_paid_for_at_its_marked_price():
    item = _gift_dress()
    decision = assess(_order_for(item), item, "no_reason", DAY[2], {**INTACT, "gift_kept": False})
    assert decision.allowed and "丝巾" in decision.explanation and "¥39" in decision.explanation
    assert "《网络购买商品七日无理由退货暂行办法》第十二条" in lines(decision)
    assert "第十二条 消费者退货时应当将商品本身、配件及赠品一并退回" in decision.citations[-1].text


def test_gift_question_is_separate_from_complete():
    from bot.orders.eligibility import condition_question

    item = _gift_dress()
    assert assess(_order_for(item), item, "no_reason", DAY[1], {}).questions == ("complete", "tags_intact", "gift_kept")
    assert "赠品" not in condition_question("complete") and "赠品" in condition_question("gift_kept")


def test_product_type_chooses_the_checks():
    lamp, formula = _lamp(), _formula()
    assert assess(_order_for(lamp), lamp, "no_reason", DAY[1], {}).questions == ("complete", "not_activated")
    assert assess(_order_for(formula), formula, "no_reason", DAY[1], {}).questions == ("complete", "seal_intact")


def test_electronics_question_follows_article_9_and_allows_testing():
    from bot.orders.eligibility import condition_question

    question = condition_question("not_activated")
    assert "明显的使用痕迹" not in question and "难以恢复原状" in question and "调试" in question


def test_notice_date_comes_from_the_order_history():
    notice = dt.datetime(2026, 11, 26, 10, 0, tzinfo=SHANGHAI)  # day 6
    decision = assess(_order_for(DRESS, notice=notice), DRESS, "no_reason", DAY[9], INTACT)
    assert decision.allowed and decision.deadline == dt.date(2026, 11, 27)


def test_holiday_deadline_goes_to_a_person_with_the_civil_code():
    decision = assess(_order_for(DRESS, HOLIDAY_SIGNED), DRESS, "no_reason", dt.date(2026, 10, 3), INTACT)
    assert decision.outcome == "window_holiday_review" and decision.kind is None
    assert "同事" in decision.explanation and "10月8日" in decision.explanation
    assert "《中华人民共和国民法典》第二百零三条" in lines(decision)
    # After the extended day the window has passed.
    late = assess(_order_for(DRESS, HOLIDAY_SIGNED), DRESS, "no_reason", dt.date(2026, 10, 9), INTACT)
    assert late.outcome == "window_passed"


def test_confirmed_unsuitable_cites_the_confirmation_rule():
    item = _confirmed_lipstick()
    assert "《网络购买商品七日无理由退货暂行办法》第二十条" in lines(assess(_order_for(item), item, "no_reason", DAY[2], INTACT))


def test_cancel_and_intercept_of_excluded_goods_is_a_store_service():
    for status in (OrderStatus.PAID, OrderStatus.SHIPPED):
        decision = assess(order(status=status, items=(CAKE,)), CAKE, "no_reason", DAY[1])
        assert decision.allowed and "本店提供的服务" in decision.explanation and "法定" in decision.explanation


def test_redelivery_cites_contract_rules():
    decision = assess(order(), DRESS, "wrong_item", DAY[10], {})
    assert "修理" not in decision.explanation and "补足" in decision.explanation
    assert lines(decision)[:2] == ["《中华人民共和国民法典》第五百七十七条", "《中华人民共和国民法典》第五百八十二条"]


def test_a_late_chat_after_a_timely_notice_says_so():
    decision = assess(order(), DRESS, "no_reason", DAY[9], INTACT, notice=DAY[6])
    assert "11月26日（期限内）已经提出过退货" in decision.explanation
