"""bot.transcript: taps read as the titles the shopper saw, never as payloads."""

from bot.transcript import describe_payload, parse_payload, turns


def bot(text, buttons=(), custom=None, **metadata):
    return {"event": "bot", "text": text, "timestamp": 1.0, "metadata": metadata,
            "data": {"buttons": list(buttons), "custom": custom}}


def user(text, attachments=None):
    return {"event": "user", "text": text, "timestamp": 2.0,
            "metadata": {"attachments": attachments} if attachments else {}}


CONFIRM = [{"title": "确认提交", "payload": "/affirm"}, {"title": "算了", "payload": "/stop"}]
ORDERS = [{"title": "订单 2026112012345678 · 降噪蓝牙耳机", "payload": '/inform{"order_id": "2026112012345678"}'}]


def test_a_tap_reads_as_the_title_of_the_button_offered():
    result = turns([bot("请确认", CONFIRM), user("/affirm")])
    assert result[1]["text"] == "确认提交" and result[1]["tap"] is True
    assert result[0]["buttons"] == CONFIRM


def test_an_order_tap_reads_as_its_card_title_not_json():
    result = turns([bot("选哪单？", ORDERS), user('/inform{"order_id": "2026112012345678"}')])
    assert result[1]["text"] == "订单 2026112012345678 · 降噪蓝牙耳机"
    assert "{" not in result[1]["text"]


def test_a_payload_no_button_offered_gets_a_description_not_the_raw_payload():
    result = turns([bot("你好"), user('/inform{"order_id": "2026112012345678"}'), user("/deny"),
                    user('/rate{"csat": 4, "resolved": true, "comment": "很快"}')])
    assert [t["text"] for t in result[1:]] == ["订单 2026112012345678", "不是", "问题已解决，评分：4分，评价：很快"]


def test_buttons_of_an_earlier_turn_do_not_explain_a_later_tap():
    result = turns([bot("请确认", CONFIRM), user("好的"), user("/affirm")])
    assert result[2]["text"] == "是的"  # the 确认提交 button was answered already


def test_forged_or_broken_payloads_are_described_safely():
    assert parse_payload('/inform{"order_id": ') == ("inform", {})
    assert parse_payload("/inform[1,2]") is None
    assert parse_payload('/inform["x"]') is None
    assert describe_payload("inform", {}) == "（点选了一个选项）"
    assert turns([user('/inform{"order_id": ')])[0]["text"] == "（点选了一个选项）"
    assert parse_payload("你好 /affirm") is None


def test_photos_agents_and_citations_are_kept():
    custom = {"type": "rights_answer", "citations": [{"law": "消法", "article": 25}]}
    result = turns([user("", ["/uploads/a.jpg"]), bot("答复", custom=custom),
                    bot("人工客服「小王」：您好", sent_by="agent", agent="alice", agent_name="小王")])
    assert result[0]["photos"] == ["/uploads/a.jpg"] and result[0]["tap"] is False
    assert result[1]["citations"] == [{"law": "消法", "article": 25}] and result[1]["custom"] == custom
    assert result[2]["from"] == "agent" and result[2]["agent_name"] == "小王"


def test_a_tapped_question_reads_as_its_knowledge_title():
    result = turns([user('/ask_rights{"kb_entry": "seven_day_return"}')], titles={"seven_day_return": "七日无理由退货"})
    assert result[0]["text"] == "七日无理由退货"
