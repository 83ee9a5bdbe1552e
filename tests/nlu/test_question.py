import pytest

from bot.nlu.question import asks_something, question_clauses, question_focus, split_questions, strip_greeting
from bot.nlu.routing import KbEvidence, reroute


@pytest.mark.parametrize(
    "text, expected",
    [
        ("您好，在吗？我想问下七天无理由从哪天算", "我想问下七天无理由从哪天算"),
        ("亲 客服你好 收到5天了能退吗", "收到5天了能退吗"),
        ("律师您好，请问定金能退吗", "请问定金能退吗"),
        ("你好", ""),
    ],
)
def test_greetings_in_front_are_dropped(text, expected):
    assert strip_greeting(text) == expected


@pytest.mark.parametrize(
    "text, asks",
    [
        ("你好 在吗", False),
        ("2026111500000012", False),
        ("12号收到的", False),
        ("好的，谢谢", False),
        ("新东西就只能维修?", True),
        ("那运费谁出", True),
        ("不是7天无理由吗", True),
        ("您好，我上周六买的空气炸锅899，用了三次就不加热了，请问能退吗", True),
    ],
)
def test_whether_a_message_asks_something(text, asks):
    assert asks_something(text) is asks


def test_two_questions_are_split_and_keep_their_story():
    text = "您好，我上周六在你们家买的空气炸锅899，用了三次就不加热了。请问能退吗？运费谁出？"
    assert question_clauses(text) == ["请问能退吗?", "运费谁出?"] or len(question_clauses(text)) == 2
    first, second = split_questions(text)
    assert "空气炸锅" in first and first.endswith("能退吗?") or first.endswith("能退吗")
    assert "空气炸锅" in second and "运费谁出" in second
    assert split_questions("七天无理由从哪天算") == ["七天无理由从哪天算"]


def test_the_focus_of_a_long_story_is_its_question_and_the_clause_before():
    text = ("您好，我去年在一家店买了台冰箱，花了三千多，用了半年压缩机就坏了，修了两次还是不制冷。"
            "商家说只能再修。请问这种情况能换新的吗")
    focus = question_focus(text)
    assert focus.startswith("商家说只能再修") and focus.endswith("能换新的吗")


KB = KbEvidence("rights", 0.8)
WEAK = KbEvidence("rights", 0.2)


@pytest.mark.parametrize(
    "intent, text, kb, expected",
    [
        # a question with an amount is not a bare answer
        ("inform", "199买的现在降到149了能退差价吗", KbEvidence("policy", 0.6), "ask_policy"),
        # a long consultation that opens with 您好 is not a greeting
        ("greet", "您好，我在你们店买的鞋穿了两天就开胶了，请问能退吗", KB, "ask_rights"),
        # DIET unsure and KB weak: the classifier's best actionable runner-up
        ("greet", "你好，我的快递到哪了？", WEAK, "order_status"),
        # a bare answer stays one
        ("inform", "2026111500000012", KB, None),
        ("greet", "你好 在吗", None, None),
        # a complaint-flavoured story that asks a legal question goes to the KB ...
        ("complain", "商家卖假货还不承认，这种情况能要三倍赔偿吗", KB, "ask_rights"),
        # ... unless the shopper says they want to complain
        ("complain", "我要投诉你们，卖假货能赔三倍吗", KB, None),
        ("request_return", "我要退货", KB, None),
        # a long story that ends in a question is a question, whatever keyword DIET caught ...
        ("complain", "您好，我上个月在一家装修公司签了合同，工期90天，结果拖了五个月才完工，"
                     "墙面还开裂了，公司说是正常现象，请问这种情况我能要求他们赔偿吗", WEAK, "ask_rights"),
        ("request_return", "口红试色了还能退么", KbEvidence("rights", 0.6), "ask_rights"),
        ("order_status", "您好，我前天晚上在你们店下单买了台飞利浦空气净化器，1299的那款，今天早上才想起来收货地址写成老家的了，家里没人能收，这种情况还能改地址吗，改不了能不能取消", KbEvidence("policy", 0.5), "ask_policy"),
        ("order_status", "已经发货了还能取消吗 我拒收行不行", KbEvidence("policy", 0.67), None),
        # ... unless the shopper says what they want done, or is angry
        ("request_return", "口红试色了不喜欢，帮我退了吧，可以吗", KB, None),
        ("order_status", "帮我查一下订单2026031500000015到哪了？", KB, None),
        ("request_human", "能不能给我转人工？", KB, None),
        ("complain", "你们凭什么不给我退？？？这种事能不能管", KB, None),
    ],
)
def test_reroute(intent, text, kb, expected):
    ranking = [(intent, 0.6), ("order_status", 0.2), ("ask_rights", 0.1)]
    assert reroute(intent, ranking, text, kb) == expected
