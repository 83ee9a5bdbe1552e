"""The handoff evidence covers the whole session, though actions see only Rasa's working window."""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa_sdk import Tracker

from actions import services
from bot.stores.redis import RedisEventLogTrackerStore

DOMAIN = Domain.from_yaml("intents: [greet]")


def sdk_tracker(rasa_tracker: DialogueStateTracker) -> Tracker:
    state = rasa_tracker.current_state(EventVerbosity.ALL)
    return Tracker(rasa_tracker.sender_id, {}, state["latest_message"], state["events"], False, None, None, None)


async def test_the_transcript_source_holds_every_turn_of_a_long_session(redis_url, monkeypatch):
    client = aioredis.Redis.from_url(redis_url)
    monkeypatch.setattr(services, "_redis", lambda: client)
    sender = f"long-{uuid.uuid4().hex}"
    store = RedisEventLogTrackerStore(DOMAIN, host=redis_url)
    full = DialogueStateTracker(sender, [])
    for turn in range(30):
        full.update(UserUttered(f"第{turn}句"))
        full.update(ActionExecuted("action_listen"))
    await store.save(full)
    window = await store.retrieve(sender)  # what the action server is sent
    assert len([e for e in window.events if isinstance(e, UserUttered)]) < 30
    window.update(UserUttered("我要投诉"))  # this turn: not saved yet

    events = await services.session_so_far(sdk_tracker(window))

    assert [e["text"] for e in events if e["event"] == "user"] == [f"第{t}句" for t in range(30)] + ["我要投诉"]
    await client.close()


async def test_without_redis_the_window_is_used(monkeypatch):
    unreachable = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    monkeypatch.setattr(services, "_redis", lambda: unreachable)
    tracker = DialogueStateTracker("s", [])
    tracker.update(UserUttered("你好"))
    events = await services.session_so_far(sdk_tracker(tracker))
    assert [e["text"] for e in events if e["event"] == "user"] == ["你好"]
