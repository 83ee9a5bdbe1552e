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
