from actions.fallback import ActionDefaultAskAffirmation

RANKING = [
    {"name": "nlu_fallback", "confidence": 0.5},
    {"name": "ask_rights", "confidence": 0.31},
    {"name": "out_of_scope", "confidence": 0.2},
    {"name": "unreadable", "confidence": 0.1},
    {"name": "request_return", "confidence": 0.1},
    {"name": "greet", "confidence": 0.05},
    {"name": "complain", "confidence": 0.04},
    {"name": "order_status", "confidence": 0.03},
]


async def test_offers_the_three_likeliest_labelled_intents_then_none_of_these(
    dispatcher, tracker_factory, domain
):
    events = await ActionDefaultAskAffirmation().run(
        dispatcher, tracker_factory("那个东西咋整", RANKING), domain
    )
    assert events == []
    (message,) = dispatcher.messages
    assert message["response"] == "utter_ask_affirmation"
    assert [b["payload"] for b in message["buttons"]] == [
        "/ask_rights",
        "/request_return",
        "/complain",
        "/out_of_scope",  # two-stage fallback reads this as "none of these"
    ]
    assert message["buttons"][0]["title"].startswith("咨询消费者权益")
    assert message["buttons"][-1]["title"] == "都不是"


async def test_without_a_ranking_only_none_of_these_is_offered(dispatcher, tracker_factory, domain):
    await ActionDefaultAskAffirmation().run(
        dispatcher, tracker_factory("嗯", [{"name": "nlu_fallback", "confidence": 0.4}]), domain
    )
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]] == ["/out_of_scope"]
