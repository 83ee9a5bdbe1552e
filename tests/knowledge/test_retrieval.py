import datetime as dt
from pathlib import Path

import pytest

from bot.knowledge.answering import answer_payload, decide
from bot.knowledge.kb import Citation, Entry
from bot.knowledge.retrieval import Analyzer, Hit, KnowledgeIndex


def entry(entry_id, title, questions, answer="答。", topic="t", kind="rights"):
    citation = Citation("某法", 1, "第一条 甲。", "《某法》第一条")
    return Entry(entry_id, kind, topic, title, tuple(questions), answer,
                 (citation,) if kind == "rights" else (), (), dt.date(2026, 11, 28), Path("x.yml"))


ENTRIES = [
    entry("seven_day", "网购商品能七天无理由退货吗", ["网上买的东西不喜欢能退吗", "七天无理由适用哪些商品", "没质量问题也能退吗"], topic="seven_day"),
    entry("fake_goods", "买到假货能退一赔三吗", ["卖假货怎么赔", "假冒商品赔偿标准", "山寨货可以要三倍赔偿吗"], topic="fraud"),
    entry("food_ten", "买到不合格食品能要十倍赔偿吗", ["吃的过期了能赔多少", "食品不符合安全标准怎么赔", "零食发霉了怎么索赔"], topic="food"),
    entry("privacy_leak", "个人信息被泄露怎么办", ["买完东西老接到骚扰电话", "商家把我的手机号卖了", "隐私泄露找谁"], topic="privacy"),
    entry("invoice", "你们开发票吗", ["能开电子发票吗", "怎么申请发票", "发票抬头写错了"], topic="invoice", kind="policy"),
]


@pytest.fixture(scope="module")
def index():
    return KnowledgeIndex(ENTRIES)


@pytest.mark.parametrize(
    "question, expected",
    [
        ("7天无理由退货适用什么东西", "seven_day"),
        ("衣服不喜欢想退掉可以吗", "seven_day"),
        ("上周在你们这买的耳机是高仿的，logo都歪了，我想知道能不能要求赔三倍", "fake_goods"),
        ("孩子吃的饼干过期了能要几倍赔偿", "food_ten"),
        ("自从在网上买了东西天天有人打电话推销 是不是信息被卖了", "privacy_leak"),
        ("开票怎么弄", "invoice"),
    ],
)
def test_paraphrases_and_stories_rank_the_right_entry_first(index, question, expected):
    assert index.search(question)[0].entry.id == expected


def test_search_returns_top_k_with_descending_scores(index):
    hits = index.search("买到假冒的食品怎么赔偿", k=3)
    assert len(hits) == 2  # only entries sharing a term with the question are returned
    assert len(index.search("买到假冒的食品怎么赔偿", k=1)) == 1
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert {hits[0].entry.id, hits[1].entry.id} == {"fake_goods", "food_ten"}


def test_questions_without_content_words_find_nothing(index):
    assert index.search("") == []
    assert index.search("请问一下吗") == []


def test_confidence_is_low_for_another_field_of_law(index):
    hits = index.search("离婚的时候房子和存款怎么分割")
    assert not hits or hits[0].confidence < 0.2


def test_synonyms_fold_to_one_term():
    analyzer = Analyzer()
    assert analyzer.words("7天无理由") == analyzer.words("七天无理由退货")
    assert analyzer.words("退掉") == analyzer.words("退货")


def hit(entry_id, score, confidence, topic="t", adds=0.0):
    return Hit(entry(entry_id, entry_id, ["a", "b", "c"], topic=topic), score, confidence, adds)


def test_decide_answers_a_clear_confident_winner():
    decision = decide([hit("a", 10, 0.8), hit("b", 4, 0.3)])
    assert (decision.kind, decision.best.entry.id, decision.related) == ("answer", "a", None)


def test_decide_clarifies_when_two_entries_are_close():
    assert decide([hit("a", 10, 0.8), hit("b", 9.5, 0.7)]).kind == "clarify"


def test_decide_clarifies_on_middling_confidence():
    assert decide([hit("a", 10, 0.3)]).kind == "clarify"


def test_decide_gives_up_when_nothing_fits():
    assert decide([]).kind == "none"
    assert decide([hit("a", 2, 0.1)]).kind == "none"


def test_decide_offers_a_second_topic_from_a_mixed_question():
    decision = decide([hit("a", 10, 0.7, "fraud"), hit("b", 6, 0.5, "privacy", adds=0.3)])
    assert decision.kind == "answer" and decision.related.entry.id == "b"


def test_decide_does_not_offer_an_entry_that_adds_nothing_new():
    decision = decide([hit("a", 10, 0.7, "fraud"), hit("b", 6, 0.9, "privacy", adds=0.1)])
    assert decision.kind == "answer" and decision.related is None


def test_mixed_question_reports_what_the_second_entry_adds(index):
    first, *rest = index.search("买到的零食过期了能赔十倍吗，还有商家把我手机号泄露了")
    second = next(h for h in rest if h.entry.id in ("privacy_leak", "food_ten") and h.entry.id != first.entry.id)
    assert first.adds == 0.0 and second.adds > 0.25


def test_payloads():
    rights = answer_payload(ENTRIES[0], 0.87654)
    assert rights == {"type": "rights_answer", "entry_id": "seven_day", "confidence": 0.877,
                      "citations": [{"law": "某法", "article": 1, "text": "第一条 甲。"}]}
    assert answer_payload(ENTRIES[4], 0.5) == {"type": "policy_answer", "entry_id": "invoice", "confidence": 0.5}
