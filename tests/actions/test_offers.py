from rasa_sdk import Tracker

from actions.offers import ActionAcceptOffer, pending_offer


def bot(utter):
    return {"event": "bot", "text": "…", "metadata": {"utter_action": utter}}


def user(text, intent):
    return {"event": "user", "text": text, "parse_data": {"intent": {"name": intent}}}


def tracker(events):
    latest = events[-1]["parse_data"] | {"text": events[-1]["text"], "entities": []}
    return Tracker("s", {}, latest, events, False, None, {}, "action_listen")


def test_pending_offer_is_the_offer_just_before_the_latest_message():
    events = [user("能退吗", "ask_rights"), bot("utter_rights_answer"), bot("utter_offer_request_return"), user("好的", "affirm")]
    assert pending_offer(events) == "request_return"


def test_an_older_offer_is_not_pending():
    events = [bot("utter_offer_request_return"), user("你好", "greet"), bot("utter_greet"), user("好的", "affirm")]
    assert pending_offer(events) is None


async def test_accepting_replays_the_turn_as_the_offered_intent(dispatcher, domain):
    events = [user("能退吗", "ask_rights"), bot("utter_offer_request_return"), user("好的", "affirm")]
    result = await ActionAcceptOffer().run(dispatcher, tracker(events), domain)
    assert [e["event"] for e in result] == ["rewind", "action", "user"]
    assert result[1]["name"] == "action_listen"
    assert result[2]["text"] == "好的"
    assert result[2]["parse_data"]["intent"] == {"name": "request_return", "confidence": 1.0}
    assert dispatcher.messages == []


async def test_affirm_without_an_offer_moves_on(dispatcher, domain):
    result = await ActionAcceptOffer().run(dispatcher, tracker([user("好的", "affirm")]), domain)
    assert result == []
    assert dispatcher.messages[0]["response"] == "utter_anything_else"


async def test_accepting_keeps_the_channel_message_id_and_metadata(dispatcher, domain):
    from rasa.shared.core.events import Event

    accepted = user("好的", "affirm") | {"input_channel": "wechat", "message_id": "wx-msg-1",
                                          "metadata": {"wechat_openid": "o-shopper", "customer_token": "t"}}
    events = [{"event": "user", "text": "能退吗", "input_channel": "wechat", "parse_data": {"intent": {"name": "ask_rights"}}},
              bot("utter_offer_request_return"), accepted]
    result = await ActionAcceptOffer().run(dispatcher, tracker(events), domain)
    replay = Event.from_parameters(result[2])  # as Rasa reads the action's events
    assert replay.input_channel == "wechat"
    assert replay.message_id == "wx-msg-1"
    assert replay.metadata == {"wechat_openid": "o-shopper", "customer_token": "t"}
    assert replay.intent_name == "request_return"
