"""The ticket store against a real Redis."""

import asyncio
import datetime as dt
import uuid

import pytest

from bot.handoff.tickets import CLAIMED, RESOLVED, WAITING, TicketError, TicketStore


@pytest.fixture
async def store(redis_url):
    tickets = TicketStore.from_url(redis_url, prefix=f"test:{uuid.uuid4().hex}:")
    yield tickets
    await tickets.close()


async def open_ticket(store, sender, priority="normal", category="human_request"):
    ticket, _ = await store.create(sender, category, priority, "socketio", "顾客要求转人工",
                                   evidence={"transcript": [{"from": "user", "text": "转人工"}]})
    return ticket


async def test_one_open_ticket_per_conversation(store):
    first, created = await store.create("s1", "complaint", "high", "rest", "投诉")
    again, created_again = await store.create("s1", "complaint", "high", "rest", "投诉")
    assert created and not created_again and again.id == first.id
    assert first.id.startswith("T") and first.status == WAITING
    assert dt.datetime.fromisoformat(first.sla_due) - dt.datetime.fromisoformat(first.created_at) == dt.timedelta(minutes=15)


async def test_queue_orders_by_priority_then_waiting_time(store):
    normal_old = await open_ticket(store, "a", "normal")
    high = await open_ticket(store, "b", "high")
    urgent = await open_ticket(store, "c", "urgent")
    normal_new = await open_ticket(store, "d", "normal")
    assert [t.id for t in await store.queue()] == [urgent.id, high.id, normal_old.id, normal_new.id]
    assert await store.position(normal_old.id) == 3


async def test_two_agents_claiming_at_once_exactly_one_wins(store):
    ticket = await open_ticket(store, "s2")
    results = await asyncio.gather(*(store.claim(ticket.id, f"agent{i}") for i in range(10)))
    assert sum(results) == 1
    claimed = await store.get(ticket.id)
    assert claimed.status == CLAIMED and claimed.assignee == f"agent{results.index(True)}"
    assert await store.queue() == []


async def test_only_the_owner_may_release_transfer_or_resolve(store):
    ticket = await open_ticket(store, "s3")
    await store.claim(ticket.id, "alice")
    for action in (store.release(ticket.id, "bob"), store.transfer(ticket.id, "bob", "carol"), store.resolve(ticket.id, "bob")):
        with pytest.raises(TicketError):
            await action
    moved = await store.transfer(ticket.id, "alice", "bob")
    assert moved.assignee == "bob"
    released = await store.release(ticket.id, "bob")
    assert released.status == WAITING and [t.id for t in await store.queue()] == [ticket.id]
    await store.claim(ticket.id, "carol")
    resolved = await store.resolve(ticket.id, "carol")
    assert resolved.status == RESOLVED and await store.open_ticket_for("s3") is None
    assert (await store.rate("s3", 5)).rating == 5


async def test_overdue_tickets_and_metrics(store):
    ticket = await open_ticket(store, "s4", "urgent")
    later = dt.datetime.fromisoformat(ticket.sla_due) + dt.timedelta(seconds=1)
    assert [t.id for t in await store.overdue(later)] == [ticket.id]
    await store.mark_sla_notified(ticket.id)
    assert await store.overdue(later) == []
    await store.claim(ticket.id, "alice")
    await store.resolve(ticket.id, "alice")
    await store.rate("s4", 4)
    metrics = await store.metrics(conversations=4)
    assert metrics["escalations"] == 1 and metrics["escalation_rate"] == 0.25 and metrics["automation_rate"] == 0.75
    assert metrics["csat"] == 4 and metrics["median_wait_s"] >= 0


async def test_the_callback_number_is_kept_on_the_open_ticket_only(store):
    ticket = await open_ticket(store, "s5")
    kept = await store.set_callback(ticket.id, "021-64331234")
    assert kept.callback == "021-64331234" and (await store.get(ticket.id)).callback == "021-64331234"
    await store.claim(ticket.id, "alice")
    await store.resolve(ticket.id, "alice")
    assert await store.set_callback(ticket.id, "13812345678") is None
    assert (await store.get(ticket.id)).callback == "021-64331234"


async def test_the_survey_stores_rating_resolved_and_comment(store):
    ticket = await open_ticket(store, "s6")
    await store.claim(ticket.id, "alice")
    await store.resolve(ticket.id, "alice")
    rated = await store.rate("s6", 4, resolved=False, comment="还要再寄一次")
    assert (rated.rating, rated.survey_resolved, rated.survey_comment) == (4, False, "还要再寄一次")
    again = await store.rate("s6", None, resolved=True)  # an answer left out keeps the earlier one
    assert (again.rating, again.survey_resolved, again.survey_comment) == (4, True, "还要再寄一次")
