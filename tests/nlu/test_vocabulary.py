import pytest

from bot.nlu.vocabulary import (
    EntityMatcher,
    VocabularyError,
    default_matcher,
    load_vocabulary,
    segment,
    synonym_table,
)


@pytest.mark.parametrize(
    "sentence, word",
    [
        ("我想七天无理由退了这个", "七天无理由"),
        ("卖假货必须退一赔三", "退一赔三"),
        ("这个手机有没有三包", "三包"),
        ("不处理我就打12315", "12315"),
        ("你们家价保几天", "价保"),
        ("下单送运费险吗", "运费险"),
        ("订单号是多少", "订单号"),
    ],
)
def test_domain_terms_stay_one_token(sentence, word):
    assert word in [token for token, _start, _end in segment(sentence)]


def test_token_offsets_point_into_the_text():
    text = "昨天在直播间买的口红是假的"
    for token, start, end in segment(text):
        assert text[start:end] == token


def test_synonyms_share_one_canonical_value():
    table = synonym_table(load_vocabulary())["rights_topic"]
    assert table["7天无理由"] == table["七天无理由退货"] == "七日无理由退货"


def test_matcher_finds_domain_entities_with_canonical_values():
    found = {
        (e.entity, e.value)
        for e in default_matcher().match("在淘宝买的蓝牙耳机是假货，商家不给7天无理由，消法怎么说")
    }
    assert found == {
        ("platform", "淘宝"),
        ("product_category", "手机数码"),
        ("complaint_target", "商家"),
        ("rights_topic", "七日无理由退货"),
        ("law", "中华人民共和国消费者权益保护法"),
    }


def test_matcher_offsets_and_latin_case():
    text = "我的IPHONE坏了"
    (match,) = default_matcher().match(text)
    assert (match.entity, match.value, text[match.start : match.end]) == (
        "product_category",
        "手机数码",
        "IPHONE",
    )


def test_matcher_ignores_empty_text():
    assert default_matcher().match("") == []


def test_malformed_vocabulary_names_file_and_entry(tmp_path):
    bad = tmp_path / "entities.yml"
    bad.write_text("platform:\n  淘宝: 天猫\n", encoding="utf-8")
    with pytest.raises(VocabularyError, match=r"entities.yml: 'platform.淘宝' must be a list"):
        load_vocabulary(bad)


def test_custom_vocabulary_builds_its_own_matcher(tmp_path):
    path = tmp_path / "entities.yml"
    path.write_text("platform:\n  闲鱼: [咸鱼]\n", encoding="utf-8")
    matcher = EntityMatcher(load_vocabulary(path))
    assert [(m.entity, m.value) for m in matcher.match("在咸鱼上买的")] == [("platform", "闲鱼")]
