"""Attack (issue 13, "ticket-queue-flood"): open ticket after ticket until agents drown.

The real escalation action runs against a real Redis ticket store. New tickets are limited per
conversation (an hour) and for everyone together (a minute); over a limit the shopper gets a polite
reply and no ticket is written.
"""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import actions.handoff as handoff
import actions.services as services
from bot.handoff.tickets import TicketStore

GLOBAL_PER_MINUTE = 10


@pytest.fixture
async def store(embedded_redis, monkeypatch):
    client = aioredis.Redis.from_url(embedded_redis.url)  # a private Redis: the global limit is its own
    store = TicketStore(client, prefix=f"test:{uuid.uuid4().hex}:")

    async def nobody(_tracker):
        return None

    async def events(tracker):
        return list(tracker.events)

    monkeypatch.setattr(handoff, "tickets", lambda: store)
    monkeypatch.setattr(handoff, "customer_of", nobody)
    monkeypatch.setattr(handoff, "session_so_far", events)
    monkeypatch.setattr(services, "limits_redis", lambda: client, raising=False)
    monkeypatch.setattr(handoff, "TICKETS_PER_MINUTE", GLOBAL_PER_MINUTE, raising=False)
    yield store
    await client.close()


def asking_for_a_person(sender: str) -> Tracker:
    latest = {"text": "转人工", "intent": {"name": "request_human", "confidence": 1.0}, "entities": [], "metadata": {}}
    return Tracker(sender, {}, latest, [{"event": "user", "text": "转人工", "parse_data": latest,
                                         "input_channel": "rest", "metadata": {}}],
                   False, None, {}, "action_listen")


async def escalate(sender: str, ip: str = None):
    dispatcher = CollectingDispatcher()
    tracker = asking_for_a_person(sender)
    if ip:  # as the REST channel records it, server side
        tracker.events[-1]["metadata"]["client_ip"] = ip
    events = await handoff.ActionEscalate().run(dispatcher, tracker, {})
    return [m["response"] for m in dispatcher.messages], events


@pytest.mark.attack("ticket-queue-flood")
async def test_many_conversations_cannot_flood_the_queue(store):
    for _ in range(GLOBAL_PER_MINUTE * 5):
        await escalate(f"flood-{uuid.uuid4().hex}")
    queued = len(await store.queue())
    assert queued <= GLOBAL_PER_MINUTE, f"{queued} tickets opened in a minute by throwaway conversations"
    replies, events = await escalate(f"flood-{uuid.uuid4().hex}")
    assert replies == ["utter_handoff_busy"]
    assert not any(e.get("event") == "pause" for e in events)  # the bot keeps helping


@pytest.mark.attack("ticket-queue-flood")
async def test_one_conversation_cannot_reopen_ticket_after_ticket(store):
    sender = f"flood-{uuid.uuid4().hex}"
    opened = 0
    for _ in range(10):
        replies, _ = await escalate(sender)
        ticket = await store.open_ticket_for(sender)
        if ticket is None:
            continue
        opened += "utter_handoff_queued" in replies
        await store.claim(ticket.id, "agent1")
        await store.resolve(ticket.id, "agent1")  # the agent closes it; the attacker asks again
    assert opened <= handoff.TICKETS_PER_SENDER_PER_HOUR if hasattr(handoff, "TICKETS_PER_SENDER_PER_HOUR") else opened <= 3


async def test_a_safety_incident_reaches_a_person_during_a_flood(store):
    for _ in range(GLOBAL_PER_MINUTE * 2):
        await escalate(f"flood-{uuid.uuid4().hex}")
    sender = f"injured-{uuid.uuid4().hex}"
    latest = {"text": "充电宝着火了，孩子手烫伤了", "intent": {"name": "complain", "confidence": 1.0},
              "entities": [], "metadata": {}}
    tracker = Tracker(sender, {}, latest, [{"event": "user", "text": latest["text"], "parse_data": latest,
                                            "input_channel": "rest", "metadata": {}}], False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    await handoff.ActionEscalate().run(dispatcher, tracker, {})
    assert [m["response"] for m in dispatcher.messages] == ["utter_handoff_urgent"]
    assert (await store.open_ticket_for(sender)).priority == "urgent"


async def test_a_shopper_already_queued_is_told_their_place_not_refused(store):
    sender = f"shopper-{uuid.uuid4().hex}"
    first, _ = await escalate(sender)
    assert first == ["utter_handoff_queued"]
    for _ in range(5):
        again, _ = await escalate(sender)
        assert again == ["utter_handoff_already_queued"]


@pytest.mark.attack("ticket-queue-flood")
async def test_one_client_ip_cannot_open_ticket_after_ticket_with_new_senders(store, monkeypatch):
    """REST senders are free to choose: one client minting a new sender per request is held by its
    IP (TICKETS_PER_IP_PER_HOUR, 10 by default), while another IP still reaches a person."""
    monkeypatch.setattr(handoff, "TICKETS_PER_IP_PER_HOUR", 4)
    ip = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
    replies = [(await escalate(f"mint-{uuid.uuid4().hex}", ip))[0] for _ in range(8)]
    assert replies[:4] == [["utter_handoff_queued"]] * 4
    assert replies[4:] == [["utter_handoff_busy"]] * 4
    other, _ = await escalate(f"shopper-{uuid.uuid4().hex}", "203.0.113.7")
    assert other == ["utter_handoff_queued"]
