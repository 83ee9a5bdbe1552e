"""Attack (issue 13, cors-empty-origins): CORS_ORIGINS="" must deny every browser origin.

The real socket.io channel (bot.channels.socketio.PoliteSocketIOInput) is served by a real Sanic
server on loopback; a browser-like request carrying an Origin header must be refused whatever
CORS_ORIGINS holds, unless the origin is listed exactly.
"""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tests.channels.sanic_server import serve_channel

POLLING = "/socket.io/?EIO=4&transport=polling"
EVIL = "https://evil.example"


def status_for(port: int, origin: str) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{POLLING}", headers={"Origin": origin})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


async def polling_status(monkeypatch, cors_origins: str, origin: str) -> int:
    import asyncio

    from bot.channels.socketio import PoliteSocketIOInput

    monkeypatch.setenv("CORS_ORIGINS", cors_origins)
    channel = PoliteSocketIOInput.from_credentials({"user_message_evt": "user_uttered", "bot_message_evt": "bot_uttered",
                                                    "session_persistence": True, "metadata_key": "customData"})
    async with serve_channel(channel) as (port, _messages):
        return await asyncio.get_running_loop().run_in_executor(None, status_for, port, origin)


@pytest.mark.attack("cors-empty-origins")
@pytest.mark.parametrize("cors_origins", ["", "   ", "not-an-origin https://*.example"], ids=["empty", "blank", "malformed"])
@pytest.mark.parametrize("origin", [EVIL, "http://127.0.0.1:8000", "null"])
async def test_no_configured_origin_lets_no_browser_connect(monkeypatch, cors_origins, origin):
    assert await polling_status(monkeypatch, cors_origins, origin) == 400


async def test_a_configured_origin_still_connects(monkeypatch):
    """Not an attack: the configured storefront keeps working, and others stay out."""
    assert await polling_status(monkeypatch, "https://shop.example.com", "https://shop.example.com") == 200
    assert await polling_status(monkeypatch, "https://shop.example.com", EVIL) == 400
