import pytest

from bot.knowledge.laws import (
    LAWS_DIR,
    chinese_to_int,
    default_statutes,
    int_to_chinese,
    parse_statute,
)


@pytest.mark.parametrize(
    "numeral, number",
    [("一", 1), ("十", 10), ("十一", 11), ("二十五", 25), ("一百", 100), ("一百零五", 105),
     ("一百一十", 110), ("一百四十八", 148), ("一千二百六十", 1260)],
)
def test_numerals_round_trip(numeral, number):
    assert chinese_to_int(numeral) == number
    assert int_to_chinese(number) == numeral


def test_every_statute_has_a_contiguous_run_of_articles():
    statutes = default_statutes()
    assert len(statutes) == 22
    for statute in statutes.values():
        assert sorted(statute.articles) == list(range(1, len(statute.articles) + 1)), statute.title


def test_article_keeps_all_paragraphs_verbatim():
    statute = default_statutes()["中华人民共和国消费者权益保护法"]
    text = statute.articles[25]
    assert text.startswith("第二十五条 经营者采用网络、电视、电话、邮购等方式销售商品")
    assert "（四）交付的报纸、期刊。" in text
    assert text.endswith("经营者和消费者另有约定的，按照约定。")
    source = (LAWS_DIR / "消费者权益保护法.md").read_text(encoding="utf-8")
    assert all(paragraph in source for paragraph in text.split("\n"))
    assert "第二十六条" not in text
    assert statute.citation_line(25) == "《中华人民共和国消费者权益保护法》第二十五条"


def test_chapter_heading_ends_an_article():
    statute = parse_statute("# 测试法\n<!-- INFO END -->\n## 第一章\n\n第一条 甲。\n\n乙。\n\n## 第二章\n\n第二条 丙。\n")
    assert statute.articles == {1: "第一条 甲。\n乙。", 2: "第二条 丙。"}


def test_statute_without_title_is_rejected():
    with pytest.raises(ValueError, match="no '# title'"):
        parse_statute("第一条 甲。")
