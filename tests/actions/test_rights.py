import pytest
from rasa_sdk import Tracker

import actions.rights as rights
from actions.rights import ActionAnswerQuestion
from bot.knowledge.retrieval import KnowledgeIndex
from tests.knowledge.test_retrieval import ENTRIES, entry

# A rights entry that competes with the store's invoice policy: "发票" alone is ambiguous.
INVOICE_LAW = entry("invoice_law", "商家不给开发票合法吗", ["不给发票怎么办", "卖家拒开发票", "索要发票被拒"], topic="invoice_law")


@pytest.fixture(autouse=True)
def small_index(monkeypatch):
    index = KnowledgeIndex(ENTRIES + [INVOICE_LAW])
    monkeypatch.setattr(rights, "default_index", lambda: index)
    return index


def tracker(text, intent="ask_rights", entities=(), slots=None):
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.99}, "entities": list(entities)}
    return Tracker("shopper-1", slots or {}, latest, [{"event": "user", "text": text, "parse_data": latest}],
                   False, None, {}, "action_listen")


async def run(dispatcher, domain, t):
    return await ActionAnswerQuestion().run(dispatcher, t, domain)


async def test_confident_rights_answer_cites_law_and_notes_once(dispatcher, domain):
    events = await run(dispatcher, domain, tracker("上周买的耳机是高仿的 能要三倍赔偿吗"))
    answer, note = dispatcher.messages
    assert answer["response"] == "utter_rights_answer"
    assert answer["citation"] == "《某法》第一条"
    assert answer["custom"]["type"] == "rights_answer" and answer["custom"]["entry_id"] == "fake_goods"
    assert answer["custom"]["citations"] == [{"law": "某法", "article": 1, "text": "第一条 甲。"}]
    assert note["response"] == "utter_legal_note"
    assert events == [{"event": "slot", "timestamp": None, "name": "legal_note_shown", "value": True}]


async def test_legal_note_is_not_repeated(dispatcher, domain):
    await run(dispatcher, domain, tracker("山寨货可以要三倍赔偿吗", slots={"legal_note_shown": True}))
    assert [m["response"] for m in dispatcher.messages] == ["utter_rights_answer"]


async def test_policy_answer_carries_policy_payload_and_no_citation(dispatcher, domain):
    await run(dispatcher, domain, tracker("你们能开电子发票吗", intent="ask_policy"))
    (message,) = dispatcher.messages
    assert message["response"] == "utter_policy_answer"
    assert message["custom"] == {"type": "policy_answer", "entry_id": "invoice", "confidence": message["custom"]["confidence"]}


async def test_nothing_suitable_says_so_and_offers_a_human(dispatcher, domain):
    events = await run(dispatcher, domain, tracker("离婚的时候房子怎么分"))
    assert [m["response"] for m in dispatcher.messages] == ["utter_kb_no_answer"]
    assert events == []


async def test_ambiguous_question_offers_entries_as_buttons(dispatcher, domain):
    await run(dispatcher, domain, tracker("发票"))
    (message,) = dispatcher.messages
    assert message["response"] == "utter_kb_clarify"
    assert [b["payload"] for b in message["buttons"]] == [
        '/ask_policy{"kb_entry": "invoice"}',
        '/ask_rights{"kb_entry": "invoice_law"}',
    ]


async def test_a_clarification_button_answers_that_entry(dispatcher, domain):
    picked = [{"entity": "kb_entry", "value": "privacy_leak"}]
    await run(dispatcher, domain, tracker('/ask_rights{"kb_entry": "privacy_leak"}', entities=picked))
    assert dispatcher.messages[0]["custom"]["entry_id"] == "privacy_leak"
