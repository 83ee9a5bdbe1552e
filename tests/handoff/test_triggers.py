import pytest

from bot.handoff.triggers import Escalation, escalation_for


@pytest.mark.parametrize(
    "text, intent, recent, expected",
    [
        ("充电宝充着充着冒烟了，差点着火", "complain", (), Escalation("safety", "urgent")),
        ("孩子把玩具上的小零件吞了！", "ask_rights", (), Escalation("safety", "urgent")),
        ("吃了你们的牛肉干上吐下泻", "inform", (), Escalation("safety", "urgent")),
        ("你们就是骗子，我要去12315投诉", "complain", (), Escalation("complaint", "high")),
        ("到底什么时候发货!!!", "order_status", (), Escalation("complaint", "high")),
        ("客服态度太差了", "complain", (), Escalation("complaint", "normal")),
        ("转人工", "request_human", (), Escalation("human_request", "normal")),
        ("找你们领导来", "out_of_scope", (), Escalation("human_request", "normal")),
        ("asdfgh", "nlu_fallback", ("greet", "nlu_fallback"), Escalation("bot_failed", "normal")),
        ("asdfgh", "nlu_fallback", ("greet",), None),
        ("七天无理由怎么算", "ask_rights", (), None),
        ("谢谢！", "thanks", (), None),
    ],
)
def test_escalation_triggers(text, intent, recent, expected):
    assert escalation_for(text, intent, recent) == expected


@pytest.mark.parametrize(
    "text",
    [
        "我没有受伤，就是想问问这个枕头能退吗",
        "还好人没受伤，我就想知道能不能要求三倍赔偿",
        "孩子并未误吞，零件掉在地上了，这个玩具能退吗",
        "担心会漏电，这种插排可以退吗",
        "万一起火了谁负责",
        "我不想投诉，就想问问价保怎么算",
        "订单2026031500000015到哪了",
        "手机尾号3150，帮我查下物流",
    ],
)
def test_denied_or_feared_words_and_digits_inside_numbers_are_not_triggers(text):
    assert escalation_for(text, "ask_rights") is None


@pytest.mark.parametrize(
    "text",
    ["插上电没过多久就起火了", "不小心烫伤了，水壶把手太烫", "没一会就冒烟了", "你们不退我就打12315", "3·15晚会曝光你们"],
)
def test_incidents_told_with_negator_like_words_still_trigger(text):
    assert escalation_for(text, "ask_rights") is not None
