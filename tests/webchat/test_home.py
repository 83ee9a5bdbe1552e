"""The web chat's home menu: 「猜你想问」 ranked by answers counted in the risk stream."""

from __future__ import annotations

import json
import uuid

import pytest
from cryptography.fernet import Fernet

from bot.console.app import ConsoleConfig, create_app
from bot.knowledge.kb import load_entries
from bot.redis_url import async_redis
from bot.risk.events import new_event
from bot.risk.stream import RiskStream, stream_key
from bot.settings import Settings
from bot.webchat.home import count_answers, curated, entries_by_id, rank_topics
from tests.console.test_console import RASA_TOKEN, FakeRasa


def test_the_most_answered_entries_come_first_then_the_curated_ones():
    entries = entries_by_id()
    counts = {"seven_day_gifts": 3, "policy_shipping_fee": 7, "gone_from_the_kb": 99, "seven_day_livestream": 0}
    menu = rank_topics(counts, entries, curated()["popular"])
    assert [m["title"] for m in menu[:2]] == [entries["policy_shipping_fee"].title, entries["seven_day_gifts"].title]
    assert menu[0]["payload"] == '/ask_policy{"kb_entry": "policy_shipping_fee"}'
    assert menu[1]["payload"] == '/ask_rights{"kb_entry": "seven_day_gifts"}'
    assert len(menu) == 5 and len({m["payload"] for m in menu}) == 5  # topped up, no duplicates


def test_with_no_counts_the_curated_list_is_shown():
    entries = entries_by_id()
    assert [m["payload"] for m in rank_topics({}, entries, curated()["popular"])] == [
        f'/{"ask_policy" if entries[i].kind == "policy" else "ask_rights"}{json.dumps({"kb_entry": i})}'
        for i in curated()["popular"]]


def test_curated_ids_exist_in_the_knowledge_base():
    ids = {entry.id for entry in load_entries()}
    assert set(curated()["popular"]) <= ids and set(curated()["rights"]) <= ids and curated()["rights"]


def test_only_rights_questions_are_counted():
    rows = [("1-0", {b"kind": b"rights_question", b"reason": b"seven_day_gifts"}),
            ("2-0", {"kind": "return", "reason": "seven_day_gifts"}),
            ("3-0", {"kind": "rights_question", "reason": "seven_day_gifts"})]
    assert count_answers(rows) == {"seven_day_gifts": 2}


@pytest.fixture
async def web(redis_url, aiohttp_server, aiohttp_client, tmp_path):
    rasa_server = await aiohttp_server(FakeRasa().app())
    prefix = f"xb:test-home:{uuid.uuid4().hex[:8]}:"
    config = ConsoleConfig(redis_url=redis_url, rasa_url=str(rasa_server.make_url("")), rasa_token=RASA_TOKEN,
                           session_key=Fernet.generate_key(), risk_prefix=prefix,
                           settings=Settings.from_env({"XIAOBAO_VAR_DIR": str(tmp_path)}))
    redis = async_redis(redis_url)
    yield await aiohttp_client(create_app(config)), RiskStream(redis, prefix=prefix)
    await redis.delete(stream_key(prefix))
    await redis.aclose() if hasattr(redis, "aclose") else await redis.close()


async def test_chat_home_ranks_what_any_replica_answered(web):
    client, stream = web
    for _ in range(3):
        assert await stream.publish(new_event("rights_question", "seven_day_livestream", "web"))
    await stream.publish(new_event("rights_question", "quality_repeated_repairs", "wechat"))
    body = await (await client.get("/chat/home")).json()
    entries = entries_by_id()
    assert [m["title"] for m in body["popular"][:2]] == [entries["seven_day_livestream"].title,
                                                         entries["quality_repeated_repairs"].title]
    assert len(body["popular"]) == 5
    assert [m["title"] for m in body["rights"]] == [entries[i].title for i in curated()["rights"]]
