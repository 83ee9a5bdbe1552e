"""Attack (issue 13, "identity-from-other-channel"): claim a victim's WeChat openid over REST.

The attacker posts `{"wechat_openid": <victim>}` as REST metadata into their own WeChat
conversation, then writes 查订单 from WeChat. Identity must come only from the channel that
authenticated it: the latest message's own metadata, and an openid only from the WeChat channel.
The real customer_of runs against a real Redis holding the openid bindings; the REST part runs
against the real stack.
"""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis
from rasa_sdk import Tracker

import actions.services as services
from bot.settings import Settings
from tests.integration.conftest import stack  # noqa: F401 (the real stack, as a fixture)

VICTIM_OPENID, VICTIM = "oDemoOpenId0001", "c1001"  # a demo customer bound in the embedded store


def user(channel: str, metadata: dict, text: str = "查订单") -> dict:
    return {"event": "user", "text": text, "input_channel": channel, "metadata": metadata,
            "parse_data": {"intent": {"name": "order_status"}, "entities": [], "text": text, "metadata": metadata}}


def tracker(sender: str, *events: dict, slots=None) -> Tracker:
    return Tracker(sender, dict(slots or {}), events[-1]["parse_data"], list(events), False, None, {}, "action_listen")


@pytest.fixture
async def action_server(redis_url, monkeypatch):
    """services wired to the test Redis with the embedded (demo) order system and bindings."""
    client = aioredis.Redis.from_url(redis_url)
    monkeypatch.setattr(services, "_redis", lambda: client)
    monkeypatch.setattr(services, "settings", lambda: Settings.from_env({}))
    monkeypatch.delenv("ORDER_SYSTEM_BASE_URL", raising=False)
    monkeypatch.delenv("IDENTITY_BASE_URL", raising=False)
    monkeypatch.setattr(services, "_seed_done", False)
    services._order_system.cache_clear()
    services.identity_bindings.cache_clear()
    yield
    services._order_system.cache_clear()
    services.identity_bindings.cache_clear()
    await client.close()


@pytest.mark.attack("identity-from-other-channel")
async def test_an_openid_posted_over_rest_does_not_identify_a_later_wechat_message(action_server):
    attacker = f"oAttacker{uuid.uuid4().hex[:12]}"  # the attacker's own, unbound, openid
    t = tracker(attacker, user("rest", {"wechat_openid": VICTIM_OPENID}, "你好"),
                user("wechat", {"wechat_openid": attacker}))
    assert await services.customer_of(t) is None, "a REST message's openid identified the WeChat conversation"


@pytest.mark.attack("identity-from-other-channel")
async def test_an_openid_in_the_session_start_metadata_does_not_identify_anyone(action_server):
    attacker = f"oAttacker{uuid.uuid4().hex[:12]}"
    t = tracker(attacker, user("wechat", {"wechat_openid": attacker}),
                slots={"session_started_metadata": {"wechat_openid": VICTIM_OPENID}})
    assert await services.customer_of(t) is None


async def test_the_wechat_channel_still_identifies_its_own_shopper(action_server):
    t = tracker(VICTIM_OPENID, user("rest", {}, "你好"), user("wechat", {"wechat_openid": VICTIM_OPENID}))
    assert await services.customer_of(t) == VICTIM
    rest_claim = tracker(VICTIM_OPENID, user("rest", {"wechat_openid": VICTIM_OPENID}))
    assert await services.customer_of(rest_claim) is None


@pytest.mark.integration
@pytest.mark.attack("identity-from-other-channel")
def test_the_rest_channel_drops_reserved_metadata_a_client_sends(stack):
    sender = f"attack-{uuid.uuid4().hex}"
    stack.send(sender, "查订单", metadata={"wechat_openid": VICTIM_OPENID, "client_ip": "203.0.113.9", "note": "x"})
    events = stack.api(f"/conversations/{sender}/tracker", token=stack.token)["events"]
    sent = [e for e in events if e.get("event") == "user"][-1]
    assert "wechat_openid" not in (sent.get("metadata") or {}), "REST stored a client-claimed WeChat openid"
    assert sent["metadata"].get("client_ip") == "127.0.0.1"  # set by the channel, not the client
    assert sent["metadata"].get("note") == "x"
    assert sent.get("input_channel") == "rest"
