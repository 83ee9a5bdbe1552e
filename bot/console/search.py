"""The agent's search (the /search page and /api/search): tickets, open and resolved, by id,
customer, order id or summary, and the customer a query names with their tickets and orders.
The request helpers (services, rendering, errors) are bot.console.app's, imported where they are
used because app imports this module for its route table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List

from aiohttp import web

from bot.console.views import order_view, ticket_view
from bot.handoff.tickets import now
from bot.orders.client import OrderSystemError
from bot.orders.models import to_dict

if TYPE_CHECKING:
    from bot.console.app import Services

SEARCH_CHARS = 64
SEARCH_RESULTS = 50


async def search(services: Services, query: str) -> Dict[str, Any]:
    """Tickets (open and resolved) whose id, customer, order id or summary contain the query,
    newest first; and the customer it names (a customer id, or an order's owner) with their
    tickets and orders."""
    needle = query.strip().lower()
    if not needle:
        return {"query": query, "tickets": [], "customers": []}
    at, displays = now(), await services.agents.display_names()
    tickets = await services.tickets.all_tickets()
    found = [t for t in tickets if any(needle in (v or "").lower() for v in (t.id, t.customer, t.order_id, t.summary))]
    found.sort(key=lambda t: t.created_at, reverse=True)
    customers, orders_down = [], False
    candidates = [query.strip()]
    try:
        order = await services.orders.order(query.strip())
        if order is not None:
            candidates.append(order.customer_id)
        for customer in dict.fromkeys(candidates):
            orders = await services.orders.orders_of(customer)
            theirs = [t for t in tickets if t.customer == customer]
            if orders or theirs:
                customers.append({"customer_id": customer, "orders": [order_view(to_dict(o)) for o in orders],
                                  "tickets": [ticket_view(t, at, displays) for t in
                                              sorted(theirs, key=lambda t: t.created_at, reverse=True)]})
    except OrderSystemError:
        orders_down = True
    return {"query": query, "tickets": [ticket_view(t, at, displays) for t in found[:SEARCH_RESULTS]],
            "more": max(len(found) - SEARCH_RESULTS, 0), "customers": customers, "orders_unavailable": orders_down}


def search_query(request: web.Request) -> str:
    from bot.console.app import bad_request

    query = str(request.query.get("q", "")).strip()
    if len(query) > SEARCH_CHARS:
        raise bad_request(f"搜索内容最多{SEARCH_CHARS}个字")
    return query


async def api_search(request: web.Request) -> web.Response:
    from bot.console.app import SERVICES

    return web.json_response(await search(request.app[SERVICES], search_query(request)))


async def search_page(request: web.Request) -> web.Response:
    from bot.console.app import SERVICES, page_context, render

    query = search_query(request)
    results = await search(request.app[SERVICES], query) if query else None
    return render(request, "search.html", **await page_context(request), query=query, results=results)


def routes() -> List[web.RouteDef]:
    """This module's part of the console's route table (bot.console.app.create_app)."""
    return [web.get("/api/search", api_search), web.get("/search", search_page)]
