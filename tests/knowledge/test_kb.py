"""The knowledge base as shipped, and load-time validation of bad entries."""

from collections import Counter
from pathlib import Path

import pytest
import yaml

from bot.knowledge.kb import KnowledgeBaseError, load_entries
from bot.knowledge.laws import LAWS_DIR

GOOD = {
    "id": "seven_day_scope",
    "topic": "seven_day_return",
    "title": "网购的东西都能七天无理由退货吗？",
    "questions": ["网上买的能退吗", "七天无理由适用哪些", "不喜欢能退吗"],
    "answer": "一般可以。",
    "citations": [{"law": "中华人民共和国消费者权益保护法", "article": 25, "quote": "消费者退货的商品应当完好。"}],
    "next_actions": ["request_return"],
    "reviewed": "2026-11-28",
}


def write(tmp_path: Path, *entries) -> Path:
    text = yaml.safe_dump({"entries": list(entries)}, allow_unicode=True).replace("'2026-11-28'", "2026-11-28")
    (tmp_path / "topic.yml").write_text(text, encoding="utf-8")
    return tmp_path


@pytest.fixture(scope="module")
def shipped():
    return load_entries()


def test_shipped_kb_covers_at_least_80_rights_entries_and_a_policy_faq(shipped):
    kinds = Counter(e.kind for e in shipped)
    assert kinds["rights"] >= 80
    assert kinds["policy"] >= 10


def test_shipped_topics_cover_the_required_areas(shipped):
    topics = {e.topic for e in shipped}
    assert {"seven_day_return", "quality", "fraud_and_pricing", "platform", "contracts_and_services",
            "privacy", "complaints", "vulnerable_groups"} <= topics


def test_every_citation_resolves_to_verbatim_statute_text(shipped):
    sources = {p: p.read_text(encoding="utf-8") for p in LAWS_DIR.rglob("*.md")}
    for entry in (e for e in shipped if e.kind == "rights"):
        assert entry.citations, entry.id
        for citation in entry.citations:
            source = next(text for text in sources.values() if text.startswith(f"# {citation.law}\n"))
            assert citation.text.startswith(citation.line.split("》")[1] + " ")
            assert all(paragraph in source for paragraph in citation.text.split("\n")), entry.id
            if citation.quote:
                assert citation.quote in citation.text, entry.id


def test_shipped_entries_are_well_formed(shipped):
    for entry in shipped:
        assert len(entry.questions) >= 3, entry.id
        assert 1 <= entry.answer.count("。") + entry.answer.count("！") + entry.answer.count("？") <= 8, entry.id


def test_policy_entries_cite_no_law(shipped):
    assert all(not e.citations for e in shipped if e.kind == "policy")


def test_a_good_entry_loads(tmp_path):
    (entry,) = load_entries([write(tmp_path, GOOD)])
    assert entry.citation_line == "《中华人民共和国消费者权益保护法》第二十五条"
    assert entry.citations[0].text.startswith("第二十五条 ")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"questions": ["只有一个"]}, r"field 'questions' must list at least 3"),
        ({"citations": [{"law": "中华人民共和国消费者权益保护法", "article": 99}]}, r"citations\[0\].article' 99 is not an article"),
        ({"citations": [{"law": "消费者保护法", "article": 25}]}, r"citations\[0\].law' names no statute"),
        ({"citations": [{"law": "中华人民共和国消费者权益保护法", "article": 25, "quote": "七天内随便退"}]}, r"citations\[0\].quote' is not verbatim"),
        ({"citations": []}, r"field 'citations' must be a non-empty list"),
        ({"next_actions": ["refund_now"]}, r"field 'next_actions' may only contain"),
        ({"id": "Bad-Id"}, r"field 'id' must be snake_case"),
        ({"answer": ""}, r"field 'answer' must be a non-empty string"),
        ({"reviewed": "yesterday"}, r"field 'reviewed' must be a date"),
        ({"kind": "policy"}, r"field 'citations' must be absent"),
    ],
)
def test_bad_entries_fail_naming_file_and_field(tmp_path, change, message):
    write(tmp_path, {**GOOD, **change})
    with pytest.raises(KnowledgeBaseError, match=message) as raised:
        load_entries([tmp_path])
    assert "topic.yml: entries[0]" in str(raised.value)


def test_duplicate_ids_are_rejected(tmp_path):
    write(tmp_path, GOOD, GOOD)
    with pytest.raises(KnowledgeBaseError, match="'seven_day_scope' already used"):
        load_entries([tmp_path])


# --- numbers in answers must come from a cited article ----------------------------------------

from bot.knowledge.kb import check_numbers, numbers_with_units, numeral_value  # noqa: E402


@pytest.mark.parametrize(
    "spelling, value",
    [("500", 500), ("五百", 500), ("一千", 1000), ("1000", 1000), ("十五", 15), ("十", 10), ("两", 2),
     ("二十", 20), ("一百零五", 105), ("五十万", 500000), ("三", 3), ("19.9", 19.9)],
)
def test_numeral_value_reads_arabic_and_chinese_numerals(spelling, value):
    assert numeral_value(spelling) == value


@pytest.mark.parametrize(
    "answer, article",
    [("赔偿三倍", "价款的三倍"), ("不足500元的按500元", "不足五百元的，为五百元"), ("1000元", "一千元"),
     ("收到后7天内", "七日内退货"), ("十五日内", "15日"), ("20%", "百分之二十"), ("百分之三十", "30%")],
)
def test_normalised_numbers_match_across_spellings(answer, article):
    assert set(numbers_with_units(answer)) == set(numbers_with_units(article))


@pytest.mark.parametrize(
    "answer, article",
    [("赔偿三倍", "十倍"), ("七日", "七元"), ("500元", "五千元"), ("20%", "二十日")],
)
def test_different_numbers_or_units_do_not_match(answer, article):
    assert not set(numbers_with_units(answer)) & set(numbers_with_units(article))


def test_vague_amounts_and_dates_are_not_quantities():
    assert numbers_with_units("只卖几十元的东西，5月3日签收，数十倍") == {}


def test_an_answer_whose_number_the_cited_article_contains_passes(tmp_path):
    entry = {**GOOD, "answer": "自收到商品之日起7天内可以退货。"}  # 消法第二十五条: 七日内退货
    assert check_numbers(load_entries([write(tmp_path, entry)])) == []


def test_an_answer_with_a_number_no_cited_article_contains_is_reported(tmp_path):
    entry = {**GOOD, "answer": "自收到商品之日起十五天内可以退货，还能获赔三倍。"}
    problems = check_numbers(load_entries([write(tmp_path, entry)]))
    assert sorted(p.number for p in problems) == ["三倍", "十五天"]
    assert all(p.entry_id == "seven_day_scope" and p.source.name == "topic.yml" for p in problems)
    assert "topic.yml: id=seven_day_scope" in str(problems[0])


def test_policy_entries_are_exempt_from_the_number_rule(tmp_path):
    entry = {**GOOD, "kind": "policy", "answer": "本店支持15天无理由退货。"}
    del entry["citations"]
    assert check_numbers(load_entries([write(tmp_path, entry)])) == []


def test_check_command_fails_on_a_number_not_in_the_cited_law(tmp_path, monkeypatch, capsys):
    import bot.knowledge.__main__ as cli

    entry = {**GOOD, "answer": "三十天内都能退。"}
    directory = write(tmp_path, entry)
    monkeypatch.setattr(cli, "load_entries", lambda: load_entries([directory]))
    assert cli.main(["check"]) == 1
    assert "id=seven_day_scope" in capsys.readouterr().err


def test_every_number_in_a_shipped_answer_is_in_a_cited_article(shipped):
    assert [str(p) for p in check_numbers(shipped)] == []
