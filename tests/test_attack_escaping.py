"""Attack tests (issue 13): shopper-chosen ids must not escape their path segment in outbound calls.

A real aiohttp server on loopback stands in for Rasa's HTTP API and for the order system. It
records the raw path of every request and which route it reached. Each hostile id must arrive as
exactly one path segment of the intended route (and decode back to itself): never another
conversation, another route, an extra query parameter or a dropped fragment.
"""

from __future__ import annotations

from typing import List, Tuple
from urllib.parse import parse_qs, unquote

import pytest
from aiohttp import web

from bot.orders.http_client import HttpOrderSystem
from bot.rasa_api import RasaApi, RasaApiError, path_segment

HOSTILE_IDS = [
    "../conversations/victim",
    "../../version",
    "x/../../conversations/victim",
    "a/b",
    "x?token=stolen&output_channel=evil",
    "x#fragment",
    "a%2Fb",
    "%2E%2E",
    "..",
    ".",
    "用户/王",
    "wx:../victim",
    " ../victim",
]

Hit = Tuple[str, str, str]  # (route, raw path, decoded id)


def recording_rasa() -> Tuple[web.Application, List[Hit], List[str]]:
    hits: List[Hit] = []
    queries: List[str] = []

    def route(name: str):
        async def handler(request: web.Request) -> web.Response:
            hits.append((name, request.raw_path.split("?")[0], request.match_info.get("conversation_id", "")))
            queries.append(request.query_string)
            return web.json_response({"sender_id": request.match_info.get("conversation_id"), "events": []})
        return handler

    app = web.Application()
    app.router.add_get("/conversations/{conversation_id}/tracker", route("tracker"))
    app.router.add_post("/conversations/{conversation_id}/tracker/events", route("events"))
    app.router.add_post("/conversations/{conversation_id}/trigger_intent", route("trigger_intent"))
    app.router.add_route("*", "/{anything:.*}", route("elsewhere"))
    return app, hits, queries


@pytest.mark.attack("rasa-api-path-escape")
@pytest.mark.parametrize("sender_id", HOSTILE_IDS)
async def test_a_hostile_conversation_id_stays_one_path_segment_of_rasa_api(aiohttp_server, sender_id):
    app, hits, queries = recording_rasa()
    server = await aiohttp_server(app)
    api = RasaApi(str(server.make_url("")), "admin-token")
    try:
        await api.tracker(sender_id)
        await api.send_bot_message(sender_id, "hello")
        await api.pause(sender_id)
        await api.trigger_intent(sender_id, "greet")
    finally:
        await api.close()

    assert [route for route, _, _ in hits] == ["tracker", "events", "events", "trigger_intent"]
    for route, raw_path, conversation_id in hits:
        segments = raw_path.split("/")
        assert segments[1] == "conversations", raw_path
        # Exactly the one segment, which decodes back to the id the shopper chose.
        assert unquote(segments[2]) == sender_id, raw_path
        assert segments[3:] in (["tracker"], ["tracker", "events"], ["trigger_intent"]), raw_path
        assert conversation_id == sender_id
    for query in queries:
        params = parse_qs(query)
        assert params["token"] == ["admin-token"]
        assert "stolen" not in query and "evil" not in query


@pytest.mark.attack("rasa-api-path-escape")
def test_ids_rasa_reads_raw_are_sent_raw():
    # Rasa 3.6 (Sanic 21.12) does not percent-decode <conversation_id:path>: namespaced ids keep
    # their ':' so the console acts on the very conversation the channel stored.
    assert path_segment("wx:oAbC-12_x") == "wx:oAbC-12_x"
    assert path_segment("web:4f1c.9a") == "web:4f1c.9a"
    assert path_segment("..") == "%2E%2E" and path_segment(".") == "%2E"
    assert "/" not in path_segment("../conversations/victim")


async def test_an_empty_conversation_id_is_refused_before_any_request(aiohttp_server):
    app, hits, _ = recording_rasa()
    server = await aiohttp_server(app)
    api = RasaApi(str(server.make_url("")), "admin-token")
    try:
        with pytest.raises(RasaApiError):
            await api.tracker("")
    finally:
        await api.close()
    assert hits == []


def recording_order_system() -> Tuple[web.Application, List[Hit]]:
    hits: List[Hit] = []

    def route(name: str, key: str):
        async def handler(request: web.Request) -> web.Response:
            hits.append((name, request.raw_path.split("?")[0], request.match_info.get(key, "")))
            raise web.HTTPNotFound()
        return handler

    app = web.Application()
    app.router.add_get("/customers/{customer_id}/orders", route("customer_orders", "customer_id"))
    app.router.add_get("/orders/{order_id}", route("order", "order_id"))
    app.router.add_get("/returns/{return_id}", route("return", "return_id"))
    app.router.add_get("/customers/{customer_id}/returns", route("customer_returns", "customer_id"))
    app.router.add_route("*", "/{anything:.*}", route("elsewhere", "anything"))
    return app, hits


ORDER_HOSTILE_IDS = HOSTILE_IDS + ["../customers/c1001/orders", "2026112012345678/../../customers/c1001/returns"]


@pytest.mark.attack("order-id-url-escape")
@pytest.mark.parametrize("order_id", ORDER_HOSTILE_IDS)
async def test_a_hostile_order_id_stays_one_path_segment_of_the_order_system(aiohttp_server, order_id):
    app, hits = recording_order_system()
    server = await aiohttp_server(app)
    system = HttpOrderSystem(str(server.make_url("")), "oms-token")
    try:
        assert await system.order(order_id) is None
        assert await system.get_return(order_id) is None
        assert await system.orders_of(order_id) == []
        assert await system.returns_of(order_id) == []
    finally:
        await system.close()

    assert [route for route, _, _ in hits] == ["order", "return", "customer_orders", "customer_returns"]
    for route, raw_path, decoded in hits:
        segments = raw_path.split("/")
        assert len(segments) == (3 if route in ("order", "return") else 4), raw_path
        assert unquote(segments[2]) == order_id, raw_path
        assert decoded == order_id


async def test_ordinary_ids_are_unchanged(aiohttp_server):
    app, hits = recording_order_system()
    server = await aiohttp_server(app)
    system = HttpOrderSystem(str(server.make_url("")), "oms-token")
    try:
        await system.order("2026112012345678")
        await system.orders_of("c1001")
    finally:
        await system.close()
    assert [raw for _, raw, _ in hits] == ["/orders/2026112012345678", "/customers/c1001/orders"]
