"""Old and forged button payloads are told from the ones the bot is waiting for."""

from __future__ import annotations

from actions.buttons import is_stale, offered_payloads
from bot.transcript import parse_payload


def turn(*buttons, custom=None):
    data = {"buttons": [{"title": p, "payload": p} for p in buttons]}
    if custom:
        data["custom"] = custom
    return {"event": "bot", "text": "?", "data": data}


def user(text):
    return {"event": "user", "text": text}


def test_a_payload_is_parsed_into_intent_and_entities():
    assert parse_payload('/inform{"order_id": "2026"}', strict=True) == ("inform", {"order_id": "2026"})
    assert parse_payload("/affirm", strict=True) == ("affirm", {})
    assert parse_payload("好的", strict=True) is None and parse_payload("/inform{broken", strict=True) is None


def test_only_the_latest_turn_counts():
    events = [user("a"), turn("/affirm", "/stop"), user("b"), turn('/inform{"item_id": "i1"}'), user("/affirm")]
    assert offered_payloads(events) == ['/inform{"item_id": "i1"}']
    assert is_stale("/affirm", "affirm", events)  # the 「确认提交」 of an earlier question
    assert not is_stale('/inform{"item_id":"i1"}', "inform", events[:-1] + [user('/inform{"item_id":"i1"}')])


def test_forged_and_typed_payloads_are_stale_but_words_and_commands_are_not():
    events = [turn("/affirm", "/deny"), user('/inform{"order_id": "2026112012345678"}')]
    assert is_stale('/inform{"order_id": "2026112012345678"}', "inform", events)
    assert not is_stale("/request_return", "request_return", events)  # a menu command
    assert not is_stale("好的", "affirm", events)  # words, not a button
    assert not is_stale('/rate{"csat": 5}', "rate", events)


def test_an_order_card_is_an_offered_choice():
    cards = {"type": "order_cards", "orders": [{"order_id": "1", "payload": '/inform{"order_id": "1"}'}]}
    events = [turn(custom=cards), user('/inform{"order_id": "1"}')]
    assert not is_stale('/inform{"order_id": "1"}', "inform", events)
    assert is_stale('/inform{"order_id": "2"}', "inform", events)
