from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.components import ProjectJiebaTokenizer, SafetyIncidentGuard, SpacyEntityRuler, UnreadableMessageGuard


def tokenizer():
    return ProjectJiebaTokenizer(ProjectJiebaTokenizer.get_default_config())


def test_tokenizer_keeps_domain_terms_and_offsets():
    message = Message({TEXT: "我要七天无理由退货 订单号2026112012345678"})
    tokens = tokenizer().tokenize(message, TEXT)
    words = [t.text for t in tokens]
    assert "七天无理由退货" in words and "订单号" in words and " " not in words
    assert all(message.get(TEXT)[t.start : t.end] == t.text for t in tokens)


def test_tokenizer_reads_both_ends_of_a_huge_message():
    text = "啊" * 10_000 + "我要退货"
    tokens = tokenizer().tokenize(Message({TEXT: text}), TEXT)
    assert len(tokens) < 700
    assert tokens[-1].text == "退货" and tokens[-1].end == len(text)


def test_entity_ruler_adds_canonical_entities_next_to_existing_ones():
    message = Message({TEXT: "拼多多上买的冰箱漏水", ENTITIES: [{"entity": "order_id", "value": "x"}]})
    SpacyEntityRuler().process([message])
    entities = {(e["entity"], e["value"], e.get("extractor")) for e in message.get(ENTITIES)}
    assert entities == {
        ("order_id", "x", None),
        ("platform", "拼多多", "SpacyEntityRuler"),
        ("product_category", "家用电器", "SpacyEntityRuler"),
    }


def test_entity_ruler_reads_both_ends_of_a_huge_message_like_the_tokenizer():
    text = "拼多多上买的" + "啊" * 50_000 + "冰箱" + "啊" * 50_000 + "在淘宝"
    message = Message({TEXT: text})
    SpacyEntityRuler().process([message])
    found = {(e["value"], text[e["start"] : e["end"]]) for e in message.get(ENTITIES)}
    assert found == {("拼多多", "拼多多"), ("淘宝", "淘宝")}  # the middle is not read: no stall


def test_guard_overrides_only_messages_without_words():
    emoji = Message({TEXT: "😂😂", INTENT: {"name": "thanks", "confidence": 0.4}})
    words = Message({TEXT: "我要退货", INTENT: {"name": "request_return", "confidence": 0.9}})
    UnreadableMessageGuard().process([emoji, words])
    assert emoji.get(INTENT) == {"name": "unreadable", "confidence": 1.0}
    assert words.get(INTENT)["name"] == "request_return"


def test_safety_incidents_become_complaints_whatever_they_asked():
    swallowed = Message({TEXT: "孩子把小零件误吞了", INTENT: {"name": "out_of_scope", "confidence": 0.8}})
    question = Message({TEXT: "七天无理由怎么算", INTENT: {"name": "ask_rights", "confidence": 0.9}})
    human = Message({TEXT: "着火了快转人工", INTENT: {"name": "request_human", "confidence": 0.9}})
    SafetyIncidentGuard().process([swallowed, question, human])
    assert swallowed.get(INTENT) == {"name": "complain", "confidence": 1.0}
    assert question.get(INTENT)["name"] == "ask_rights"
    assert human.get(INTENT)["name"] == "request_human"  # already going to a person
