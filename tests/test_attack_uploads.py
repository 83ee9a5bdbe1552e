"""Attack (issue 13, uploads-unlimited): filling the disk through the unauthenticated upload route.

Against the real web app (bot.console.app.create_app) through aiohttp's test client and a real
Redis, with the default settings. Passes only when a flood from one client is cut off by the
quotas (also when it mints a new session id for every upload), old uploads are deleted after the
retention period, and uploads go to a folder of their own (UPLOADS_DIR), never next to Redis's data.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
import redis as redis_lib
from aiohttp import FormData
from cryptography.fernet import Fernet

from bot.console.app import ConsoleConfig, create_app
from bot.settings import Settings
from tests.console.test_console import RASA_TOKEN

ATTACK = pytest.mark.attack("uploads-unlimited")
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.fixture(autouse=True)
def fresh_quotas(redis_url):
    """Each test starts with no upload counted (the counters are shared by every replica)."""
    client = redis_lib.Redis.from_url(redis_url)
    for key in client.scan_iter("xb:uploads:*"):
        client.delete(key)
    client.close()


async def web_app(aiohttp_client, redis_url, tmp_path, **env):
    settings = Settings.from_env({"XIAOBAO_VAR_DIR": str(tmp_path / "var"), "STORE_SIGNING_SECRET": "s", **env})
    config = ConsoleConfig(redis_url=redis_url, rasa_url="http://127.0.0.1:9", rasa_token=RASA_TOKEN,
                           session_key=Fernet.generate_key(), settings=settings, rasa_public_url="http://127.0.0.1:5999")
    return await aiohttp_client(create_app(config)), settings


async def upload(client, session_id: str = "") -> int:
    form = FormData()
    form.add_field("image", PNG + os.urandom(16), filename="a.png", content_type="image/png")
    return (await client.post("/chat/upload" + (f"?session_id={session_id}" if session_id else ""), data=form)).status


def stored(tmp_path) -> int:
    return sum(1 for path in tmp_path.rglob("*.png"))


@ATTACK
async def test_a_flood_of_uploads_from_one_client_is_cut_off(aiohttp_client, redis_url, tmp_path):
    client, settings = await web_app(aiohttp_client, redis_url, tmp_path)
    statuses = [await upload(client, session_id=uuid.uuid4().hex) for _ in range(settings.uploads_per_sender_hour + 10)]
    assert statuses.count(200) <= 20, "one client uploaded without limit"
    assert statuses[-1] == 429
    assert stored(tmp_path) == statuses.count(200)


@ATTACK
async def test_everyone_together_is_limited_too(aiohttp_client, redis_url, tmp_path):
    client, _ = await web_app(aiohttp_client, redis_url, tmp_path, UPLOADS_PER_SENDER_HOUR="1000",
                              UPLOAD_BYTES_GLOBAL_DAY=str(10 * 1024))
    statuses = [await upload(client) for _ in range(200)]  # 200 x ~100 bytes: over the 10 KB a day
    assert 429 in statuses and stored(tmp_path) == statuses.count(200) < 200


@ATTACK
async def test_uploads_older_than_the_retention_period_are_deleted(aiohttp_client, redis_url, tmp_path):
    folder = tmp_path / "var" / "uploads"
    folder.mkdir(parents=True)
    old, recent = folder / ("a" * 32 + ".png"), folder / ("b" * 32 + ".png")
    for path in (old, recent):
        path.write_bytes(PNG)
    month_ago = time.time() - 31 * 86400
    os.utime(old, (month_ago, month_ago))
    client, _ = await web_app(aiohttp_client, redis_url, tmp_path, UPLOAD_RETENTION_DAYS="30")
    assert not old.exists(), "an upload was kept past its retention period"
    assert recent.exists()
    assert (await client.get("/uploads/" + old.name)).status == 404


@ATTACK
async def test_uploads_go_to_their_own_folder(aiohttp_client, redis_url, tmp_path):
    own = tmp_path / "uploads-volume"
    client, settings = await web_app(aiohttp_client, redis_url, tmp_path, UPLOADS_DIR=str(own))
    assert await upload(client) == 200
    assert len(list(own.glob("*.png"))) == 1
    assert not list(settings.var_dir.rglob("*.png")), "an upload was written under var/, next to Redis's data"
