"""The assistant end to end over the REST webhook, with real Redis, actions and Rasa."""

from __future__ import annotations

import asyncio
import threading
import urllib.error
import uuid

import pytest

from bot.channels.polite import system_message
from tests.integration.conftest import all_response_texts, matches_response, stored_open_ticket

pytestmark = pytest.mark.integration


def new_sender() -> str:
    return f"shopper-{uuid.uuid4().hex[:12]}"


def texts(messages):
    return [m.get("text") for m in messages]


def test_greeting_gets_a_greeting(stack):
    (reply,) = stack.send(new_sender(), "你好")
    assert matches_response(reply["text"], "utter_greet")


def test_return_request_from_an_anonymous_shopper_asks_for_the_order(stack):
    (reply,) = stack.send(new_sender(), "我要退货")
    assert matches_response(reply["text"], "utter_ask_order_id_number")


def test_a_bare_order_number_asks_what_to_do_with_it(stack):
    (reply,) = stack.send(new_sender(), "2026112012345678")
    assert matches_response(reply["text"], "utter_got_order_id", order_id="2026112012345678")
    assert [b["payload"] for b in reply["buttons"]] == ["/order_status", "/request_return", "/complain"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "utter_unreadable"),
        ("   ", "utter_unreadable"),
        ("😂😂😂🙏", "utter_unreadable"),
    ],
    ids=["empty", "blank", "emoji-only"],
)
def test_bad_input_gets_a_polite_reply(stack, text, expected):
    replies = stack.send(new_sender(), text)
    assert replies, "the shopper must never meet silence"
    assert matches_response(replies[0]["text"], expected)


def test_a_story_at_the_length_limit_is_answered_and_stored_whole(stack):
    """2000 characters (MAX_MESSAGE_CHARS); longer ones get the too-long reply (test_bad_messages)."""
    sender = new_sender()
    story = ("上个月在你们店买的吹风机，用了几次就开始冒烟，" * 100)[:1993] + "我要退货怎么办"
    assert len(story) == 2_000
    replies = stack.send(sender, story)
    assert replies and replies[0]["text"] in all_response_texts()
    assert user_texts(stack, sender) == [story]


def test_mixed_chinese_and_english_is_understood(stack):
    (reply,) = stack.send(new_sender(), "hello 我的parcel到哪了 order还没到")
    assert matches_response(reply["text"], "utter_ask_order_id_number")  # order lookup, anonymous


def test_two_stage_fallback_clarifies_then_hands_over_to_a_person(stack):
    sender = new_sender()
    (clarify,) = stack.send(sender, "/nlu_fallback")
    assert matches_response(clarify["text"], "utter_ask_affirmation")
    assert clarify["buttons"][-1] == {"title": "都不是", "payload": "/out_of_scope"}

    (rephrase,) = stack.send(sender, "/out_of_scope")
    assert matches_response(rephrase["text"], "utter_ask_rephrase")

    (clarify_again,) = stack.send(sender, "/nlu_fallback")
    assert matches_response(clarify_again["text"], "utter_ask_affirmation")

    replies = stack.send(sender, "/out_of_scope")
    assert matches_response(replies[0]["text"], "utter_default"), replies
    assert "工单号" in replies[1]["text"], replies  # clarification failed twice: a person takes over
    statuses = [m["custom"] for m in replies if (m.get("custom") or {}).get("type") == "handoff_status"]
    assert [s["state"] for s in statuses] == ["queued"], replies
    ticket = asyncio.run(stored_open_ticket(stack.redis_url, sender=sender))
    assert ticket.category == "bot_failed"


def test_clarification_button_answers_the_chosen_intent(stack):
    sender = new_sender()
    stack.send(sender, "/nlu_fallback")
    (answer,) = stack.send(sender, "/request_return")
    assert matches_response(answer["text"], "utter_ask_order_id_number")


def test_http_api_requires_the_token(stack):
    with pytest.raises(urllib.error.HTTPError) as denied:
        stack.api("/conversations/anyone/tracker")
    assert denied.value.code == 401
    assert stack.api("/conversations/anyone/tracker", token=stack.token)["sender_id"] == "anyone"


def user_texts(stack, sender):
    events = stack.api(f"/conversations/{sender}/tracker", token=stack.token)["events"]
    return [e["text"] for e in events if e["event"] == "user"]


def test_conversation_survives_a_rasa_restart(stack):
    sender = new_sender()
    stack.send(sender, "你好")
    stack.send(sender, "我的快递到哪了")
    stack.restart_rasa()
    assert user_texts(stack, sender) == ["你好", "我的快递到哪了"]
    (reply,) = stack.send(sender, "谢谢你")
    assert matches_response(reply["text"], "utter_thanks")
    assert user_texts(stack, sender) == ["你好", "我的快递到哪了", "谢谢你"]


def needs_own_redis(stack):
    if stack.redis is None:
        pytest.skip("REDIS_URL points at a server this test cannot restart")


def test_message_sent_while_redis_restarts_is_answered_and_kept(stack):
    needs_own_redis(stack)
    sender = new_sender()
    stack.send(sender, "你好")
    stack.redis.stop()
    restarter = threading.Timer(1.0, stack.redis.start)
    restarter.start()
    try:
        (reply,) = stack.send(sender, "我的快递到哪了")
    finally:
        restarter.join()
    assert matches_response(reply["text"], "utter_ask_order_id_number")
    assert user_texts(stack, sender) == ["你好", "我的快递到哪了"]


def test_redis_outage_gets_an_apology_not_silence_and_recovers(stack):
    needs_own_redis(stack)
    sender = new_sender()
    stack.redis.stop()
    try:
        (reply,) = stack.send(sender, "你好")
        assert reply["text"] == system_message("turn_failed")
    finally:
        stack.redis.start()
    (reply,) = stack.send(sender, "你好")
    assert matches_response(reply["text"], "utter_greet")


def split_reply(messages):
    """REST sends a custom payload as its own message: (texts, payloads)."""
    return [m for m in messages if "text" in m], [m["custom"] for m in messages if "custom" in m]


def test_rights_question_is_answered_with_citation_payload_and_a_follow_up(stack):
    from bot.knowledge.laws import default_statutes

    sender = new_sender()
    texts, (payload,) = split_reply(stack.send(sender, "网上买的裙子收到后不喜欢，七天内能不能退"))
    answer, note, *suggestions, offer = texts
    assert [m["text"] for m in suggestions] in ([], ["您可能还想问："])
    assert payload["type"] == "rights_answer" and payload["confidence"] > 0
    assert "依据：《中华人民共和国消费者权益保护法》第二十五条" in answer["text"]
    assert payload["citations"] and all(
        default_statutes()[c["law"]].articles[c["article"]] == c["text"] for c in payload["citations"]
    )
    assert matches_response(note["text"], "utter_legal_note")
    assert matches_response(offer["text"], "utter_offer_request_return")

    (accepted,) = stack.send(sender, "好的")
    assert matches_response(accepted["text"], "utter_ask_order_id_number")  # the return form started
    stack.send(sender, "算了")

    texts, payloads = split_reply(stack.send(sender, "我在你们店买到的耳机是假货，能要求退一赔三吗"))
    assert [p["type"] for p in payloads] == ["rights_answer"]  # answered first
    assert not any(matches_response(m["text"], "utter_legal_note") for m in texts)


def test_store_policy_question_is_marked_as_store_rules(stack):
    texts, payloads = split_reply(stack.send(new_sender(), "满多少钱包邮啊"))
    assert payloads and payloads[0]["type"] == "policy_answer"
    assert "本店自行制定" in texts[0]["text"]


def test_question_from_another_field_of_law_gets_no_invented_answer(stack):
    replies = stack.send(new_sender(), "离婚的时候夫妻共同财产怎么分割")
    assert not any((m.get("custom") or {}).get("type") == "rights_answer" for m in replies)


def test_a_broad_rights_question_is_answered_first_and_a_suggestion_answers_another_entry(stack):
    sender = new_sender()
    replies = stack.send(sender, "想咨询一下定金的规定")
    texts, payloads = split_reply(replies)
    assert payloads and payloads[0]["type"] == "rights_answer" and payloads[0]["entry_id"].startswith("contract_")
    (suggestions,) = [m for m in replies if matches_response(m.get("text", ""), "utter_kb_suggestions")]
    offered = [b["payload"] for b in suggestions["buttons"]]
    assert 1 <= len(offered) <= 2 and all(p.startswith("/ask_") for p in offered)
    picked = offered[0].split('"kb_entry": "')[1].rstrip('"}')
    assert picked != payloads[0]["entry_id"]
    texts, payloads = split_reply(stack.send(sender, offered[0]))
    assert payloads[0]["entry_id"] == picked


def test_action_server_outage_gets_an_apology_and_recovers(stack):
    sender = new_sender()
    stack.actions.stop()
    try:
        (reply,) = stack.send(sender, "买到假货能要求退一赔三吗")
        assert reply["text"] == system_message("turn_failed")
        (greeting,) = stack.send(sender, "你好")  # what needs no action server still works
        assert matches_response(greeting["text"], "utter_greet")
    finally:
        stack.start_actions()
    texts, payloads = split_reply(stack.send(sender, "买到假货能要求退一赔三吗"))
    assert payloads and payloads[0]["type"] == "rights_answer"
    assert user_texts(stack, sender) == ["买到假货能要求退一赔三吗", "你好", "买到假货能要求退一赔三吗"]


def test_server_logs_mask_personal_data(stack):
    stack.send(new_sender(), "我的电话13812345678 住杭州市西湖区文三路88号3栋")
    logs = (stack.log_dir / "rasa.log").read_text(errors="replace")
    assert "138****5678" in logs  # Rasa logged the message (at DEBUG) ...
    assert "13812345678" not in logs and "文三路88号" not in logs  # ... masked
