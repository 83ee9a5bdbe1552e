"""A local order-management HTTP server implementing HttpOrderSystem's contract, for tests.

It serves any OrderSystem (the Redis one in the tests) and can be told to answer slowly, to every
request or only to some methods (slow writes, fast reads).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.orders.client import NewReturn
from bot.orders.models import to_dict

SYSTEM = web.AppKey("system", object)
TOKEN = web.AppKey("token", str)
DELAY = web.AppKey("delay", list)
SLOW_METHODS = web.AppKey("slow_methods", tuple)


@web.middleware
async def auth_and_delay(request: web.Request, handler):
    if request.headers.get("Authorization") != f"Bearer {request.app[TOKEN]}":
        raise web.HTTPUnauthorized()
    if request.method in request.app[SLOW_METHODS]:
        await asyncio.sleep(request.app[DELAY][0])
    return await handler(request)


async def customer_orders(request: web.Request) -> web.Response:
    orders = await request.app[SYSTEM].orders_of(request.match_info["customer_id"])
    return web.json_response([to_dict(o) for o in orders])


async def orders_with_sku(request: web.Request) -> web.Response:
    if "sku" not in request.query or len(request.query.getall("sku")) != 1:
        raise web.HTTPBadRequest()
    orders = await request.app[SYSTEM].orders_with_sku(request.query["sku"])
    return web.json_response([to_dict(o) for o in orders])


async def one_order(request: web.Request) -> web.Response:
    order = await request.app[SYSTEM].order(request.match_info["order_id"])
    if order is None:
        raise web.HTTPNotFound()
    return web.json_response(to_dict(order))


async def create_return(request: web.Request) -> web.Response:
    data = await request.json()
    new = NewReturn(**{**data, "item_ids": tuple(data["item_ids"]), "evidence": tuple(data.get("evidence", ()))})
    created_return, created = await request.app[SYSTEM].create_return(new)
    return web.json_response({"return": to_dict(created_return), "created": created})


async def one_return(request: web.Request) -> web.Response:
    found = await request.app[SYSTEM].get_return(request.match_info["return_id"])
    if found is None:
        raise web.HTTPNotFound()
    return web.json_response(to_dict(found))


async def customer_returns(request: web.Request) -> web.Response:
    found = await request.app[SYSTEM].returns_of(request.match_info["customer_id"])
    return web.json_response([to_dict(r) for r in found])


def create_app(system, token: str, delay_s: float = 0.0, slow_methods=("GET", "POST")) -> web.Application:
    app = web.Application(middlewares=[auth_and_delay])
    app[SYSTEM], app[TOKEN], app[DELAY], app[SLOW_METHODS] = system, token, [delay_s], tuple(slow_methods)
    app.add_routes([
        web.get("/customers/{customer_id}/orders", customer_orders),
        web.get("/orders", orders_with_sku),
        web.get("/orders/{order_id}", one_order),
        web.post("/returns", create_return),
        web.get("/returns/{return_id}", one_return),
        web.get("/customers/{customer_id}/returns", customer_returns),
    ])
    return app
