"""Pure helpers of actions/handoff.py: callback numbers, masking, ticket numbers, contact questions."""

from __future__ import annotations

import pytest

from actions.rights import asks_for_contact

from actions.handoff import callback_number, masked_phone, survey_answer, ticket_id_in


@pytest.mark.parametrize("text, number", [
    ("13812345678", "13812345678"),
    ("我的电话是 138 1234 5678", "13812345678"),
    ("打座机吧 021-64331234", "021-64331234"),
    ("０５７１－８７６５４３２１", "0571-87654321"),  # typed with a full-width keyboard
    ("１３８１２３４５６７８", "13812345678"),
    ("订单号2026112012345678", None),
    ("尾号5678", None),
])
def test_callback_numbers_are_read_from_mobiles_and_landlines(text, number):
    assert callback_number(text) == number


def test_numbers_are_masked_in_the_middle():
    assert masked_phone("13812345678") == "138****5678"
    assert masked_phone("021-64331234") == "021****1234"


def test_ticket_numbers_are_read_with_or_without_words():
    assert ticket_id_in("查一下工单 T2026120300001") == "T2026120300001"
    assert ticket_id_in("t2026120300001") == "T2026120300001"
    assert ticket_id_in("订单2026120300001234") is None


def test_asking_for_the_phone_or_hours_is_a_question_not_a_request_for_a_person():
    for text in ("客服电话多少", "你们的热线是多少？", "人工客服几点上班", "给我个人工客服电话 我打过去说",
                 "售后电话是几号", "有没有客服电话啊", "你们客服晚上几点下班", "周末客服上班吗"):
        assert asks_for_contact(text), text
    for text in ("转人工", "我要人工服务", "我的电话是13812345678", "商家打电话骚扰我怎么办", "人工客服在哪里",
                 "工作时间内发货吗"):
        assert not asks_for_contact(text), text


def test_the_survey_answer_is_read_from_json_or_text():
    assert survey_answer(True) is True and survey_answer("false") is False and survey_answer(None) is None


async def test_a_button_payload_is_never_taken_as_the_complaint_story(tracker_factory, dispatcher, domain):
    from actions.handoff import ValidateComplaintForm

    tracker = tracker_factory("/affirm", [{"name": "affirm", "confidence": 1.0}])
    tracker.slots["requested_slot"] = "complaint_details"
    assert await ValidateComplaintForm().extract_complaint_details(dispatcher, tracker, domain) == {}
    story = tracker_factory("耳机用了一个月就坏了，客服也不回", [{"name": "complain", "confidence": 1.0}])
    story.slots["requested_slot"] = "complaint_details"
    assert await ValidateComplaintForm().extract_complaint_details(dispatcher, story, domain) == {
        "complaint_details": "耳机用了一个月就坏了，客服也不回"}
