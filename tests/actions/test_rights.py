import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import FollowupAction

import actions.rights as rights
from actions.rights import ActionAnswerQuestion
from bot.knowledge.retrieval import KnowledgeIndex
from tests.knowledge.test_retrieval import ENTRIES, entry

LISTEN = FollowupAction("action_listen")  # outside a form the action ends the turn

# A rights entry that competes with the store's invoice policy: "发票" alone is ambiguous.
INVOICE_LAW = entry("invoice_law", "商家不给开发票合法吗", ["不给发票怎么办", "卖家拒开发票", "索要发票被拒"], topic="invoice_law")


@pytest.fixture(autouse=True)
def small_index(monkeypatch):
    index = KnowledgeIndex(ENTRIES + [INVOICE_LAW])
    monkeypatch.setattr(rights, "default_index", lambda dense=False: index)
    return index


def tracker(text, intent="ask_rights", entities=(), slots=None):
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.99}, "entities": list(entities)}
    return Tracker("shopper-1", slots or {}, latest, [{"event": "user", "text": text, "parse_data": latest}],
                   False, None, {}, "action_listen")


async def run(dispatcher, domain, t):
    return await ActionAnswerQuestion().run(dispatcher, t, domain)


async def test_confident_rights_answer_cites_law_and_notes_once(dispatcher, domain):
    events = await run(dispatcher, domain, tracker("上周买的耳机是高仿的 能要三倍赔偿吗"))
    answer, note, *rest = dispatcher.messages
    assert [m["response"] for m in rest] in ([], ["utter_kb_suggestions"])
    assert answer["response"] == "utter_rights_answer"
    assert answer["citation"] == "《某法》第一条"
    assert answer["custom"]["type"] == "rights_answer" and answer["custom"]["entry_id"] == "fake_goods"
    assert answer["custom"]["citations"] == [{"law": "某法", "article": 1, "text": "第一条 甲。"}]
    assert note["response"] == "utter_legal_note"
    assert events == [{"event": "slot", "timestamp": None, "name": "legal_note_shown", "value": True}, LISTEN]


async def test_legal_note_is_not_repeated(dispatcher, domain):
    await run(dispatcher, domain, tracker("山寨货可以要三倍赔偿吗", slots={"legal_note_shown": True}))
    assert "utter_legal_note" not in [m["response"] for m in dispatcher.messages]
    assert dispatcher.messages[0]["response"] == "utter_rights_answer"


async def test_policy_answer_carries_policy_payload_and_no_citation(dispatcher, domain):
    await run(dispatcher, domain, tracker("你们能开电子发票吗", intent="ask_policy"))
    message, *rest = dispatcher.messages
    assert "utter_legal_note" not in [m["response"] for m in rest]
    assert message["response"] == "utter_policy_answer"
    assert message["custom"] == {"type": "policy_answer", "entry_id": "invoice", "confidence": message["custom"]["confidence"]}


async def test_nothing_suitable_says_so_and_offers_a_human(dispatcher, domain):
    events = await run(dispatcher, domain, tracker("离婚的时候房子怎么分"))
    assert [m["response"] for m in dispatcher.messages] == ["utter_kb_no_answer"]
    assert events == [LISTEN]


async def test_answer_first_with_the_runner_up_under_you_might_also_ask(dispatcher, domain):
    # 「发票」 fits the store's invoice policy and the law on refused invoices: answer the best
    # one and offer the other one tap away, instead of a wall of buttons.
    await run(dispatcher, domain, tracker("发票"))
    answer, *rest = dispatcher.messages
    assert answer["response"] in ("utter_policy_answer", "utter_policy_answer_titled", "utter_rights_answer",
                                  "utter_rights_answer_titled")
    (suggestions,) = [m for m in rest if m["response"] == "utter_kb_suggestions"]
    payloads = {b["payload"] for b in suggestions["buttons"]}
    assert payloads & {'/ask_policy{"kb_entry": "invoice"}', '/ask_rights{"kb_entry": "invoice_law"}'}
    assert f'"kb_entry": "{answer["custom"]["entry_id"]}"' not in str(payloads)


async def test_near_tie_of_two_topics_with_middling_confidence_asks(dispatcher, domain, monkeypatch):
    from bot.knowledge import answering
    from tests.knowledge.test_retrieval import hit

    async def tied(index, text):
        return answering.decide([hit("invoice", 10, 0.35, "invoice"), hit("invoice_law", 9.8, 0.34, "invoice_law")])

    monkeypatch.setattr(rights, "decide_for", tied)
    await run(dispatcher, domain, tracker("发票"))
    (message,) = dispatcher.messages
    assert message["response"] == "utter_kb_clarify" and len(message["buttons"]) == 2


async def test_each_question_of_a_two_question_message_is_answered(dispatcher, domain):
    await run(dispatcher, domain, tracker("山寨货可以要三倍赔偿吗？还有商家把我的手机号卖了怎么办？"))
    answered = [m["custom"]["entry_id"] for m in dispatcher.messages if m.get("custom")]
    assert set(answered) == {"fake_goods", "privacy_leak"}
    second = [m for m in dispatcher.messages if m.get("custom")][1]
    assert second["response"] == "utter_rights_answer_titled"


async def test_a_clarification_button_answers_that_entry(dispatcher, domain):
    picked = [{"entity": "kb_entry", "value": "privacy_leak"}]
    await run(dispatcher, domain, tracker('/ask_rights{"kb_entry": "privacy_leak"}', entities=picked))
    assert dispatcher.messages[0]["custom"]["entry_id"] == "privacy_leak"


async def test_out_of_scope_gets_a_referral_but_a_question_the_kb_knows_is_answered(dispatcher, domain, monkeypatch):
    from actions.fallback import ActionOutOfScope

    await ActionOutOfScope().run(dispatcher, tracker("公司拖欠我三个月工资怎么办", intent="out_of_scope"), domain)
    (reply,) = dispatcher.messages
    assert "抱歉" in reply["text"] and "12333" in reply["text"]

    dispatcher.messages.clear()
    await ActionOutOfScope().run(dispatcher, tracker("山寨货可以要三倍赔偿吗", intent="out_of_scope"), domain)
    assert dispatcher.messages[0]["custom"]["entry_id"] == "fake_goods"
