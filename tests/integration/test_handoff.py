"""Complaint intake, safety escalation and callbacks over the REST channel."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from bot.rasa_api import RasaApi
from tests.integration.conftest import matches_response, stored_open_ticket

pytestmark = pytest.mark.integration


def new_sender():
    return f"shopper-{uuid.uuid4().hex[:10]}"


def ticket_for(redis_url, sender):
    return asyncio.run(stored_open_ticket(redis_url, sender=sender))


def test_complaint_intake_then_a_person_and_the_bot_falls_silent(stack):
    sender = new_sender()
    sorry, ask_details = stack.send(sender, "我要投诉你们")
    assert matches_response(sorry["text"], "utter_complaint_sorry")
    assert matches_response(ask_details["text"], "utter_ask_complaint_details")
    (ask_outcome,) = stack.send(sender, "买的耳机一个月就坏了，客服一直不回复")
    assert [b["title"] for b in ask_outcome["buttons"]][:2] == ["退款", "换货"]
    queued, status = stack.send(sender, "退款")  # the text, then the widget's handoff_status
    assert "工单号" in queued["text"] and status["custom"]["type"] == "handoff_status"
    ticket = ticket_for(stack.redis_url, sender)
    assert ticket.category == "complaint" and "耳机一个月就坏了" in ticket.summary and "诉求：退款" in ticket.summary
    assert [t["text"] for t in ticket.evidence["transcript"] if t["from"] == "user"][:2] == ["我要投诉你们", "买的耳机一个月就坏了，客服一直不回复"]
    assert stack.send(sender, "还要等多久") == []  # paused for a person: recorded, no bot reply, no apology
    events = stack.api(f"/conversations/{sender}/tracker", token=stack.token)["events"]
    assert [e["text"] for e in events if e["event"] == "user"][-1] == "还要等多久"


def test_safety_incident_goes_straight_to_a_person_as_urgent(stack):
    sender = new_sender()
    *_sorry, reply, _status = stack.send(sender, "孩子把玩具上的小零件误吞了，现在很难受")
    ticket = ticket_for(stack.redis_url, sender)
    assert ticket.priority == "urgent" and ticket.category == "safety"
    assert matches_response(reply["text"], "utter_handoff_urgent", ticket_id=ticket.id)


def test_skipping_the_intake_straight_to_a_person(stack):
    sender = new_sender()
    stack.send(sender, "我要投诉")
    queued, _status = stack.send(sender, "/request_human")
    assert "工单号" in queued["text"]


def test_a_phone_number_left_while_waiting_is_noted_for_a_callback(stack):
    sender = new_sender()
    stack.send(sender, "转人工")
    ticket = ticket_for(stack.redis_url, sender)

    async def resume():  # what the console does when the SLA passes unclaimed
        api = RasaApi(f"http://127.0.0.1:{stack.rasa_port}", stack.token)
        await api.resume(sender)
        await api.close()

    asyncio.run(resume())
    (reply,) = stack.send(sender, "我的电话是13812345678")
    assert "138****5678" in reply["text"] and ticket.id in reply["text"] and "13812345678" not in reply["text"]
    noted = ticket_for(stack.redis_url, sender)
    assert noted.callback == "13812345678" and noted.notes[-1]["text"] == "顾客请求回电：13812345678"
