"""Attack (issue 13, demo-token-minting): /shop?customer=c1001 on a web app that is not a demo.

Against the real web app (bot.console.app.create_app, which mounts the web-chat routes) through
aiohttp's test client, with the store's real signing secret configured. Passes only when no
customer token is signed without DEMO=1, and DEMO=1 with production settings refuses to start.
"""

from __future__ import annotations

import re

import pytest
from cryptography.fernet import Fernet

from bot.console.app import ConsoleConfig, create_app
from bot.identity import verify_customer_token
from bot.settings import Settings
from tests.console.test_console import RASA_TOKEN

ATTACK = pytest.mark.attack("demo-token-minting")
SECRET = "the-production-store-signing-secret"


def config(tmp_path, redis_url, **env) -> ConsoleConfig:
    settings = Settings.from_env({"XIAOBAO_VAR_DIR": str(tmp_path), "STORE_SIGNING_SECRET": SECRET, **env})
    return ConsoleConfig(redis_url=redis_url, rasa_url="http://127.0.0.1:9", rasa_token=RASA_TOKEN,
                         session_key=Fernet.generate_key(), settings=settings, rasa_public_url="http://127.0.0.1:5999")


@ATTACK
@pytest.mark.parametrize("env", [{}, {"XIAOBAO_ENV": "production"}, {"DEMO": "0"}, {"DEMO": "true"}],
                         ids=["default", "production", "demo-0", "demo-true"])
async def test_shop_signs_no_customer_token_outside_a_demo(redis_url, aiohttp_client, tmp_path, env):
    client = await aiohttp_client(create_app(config(tmp_path, redis_url, **env)))
    for customer in ("c1001", "c1002"):
        page = await client.get(f"/shop?customer={customer}")
        html = await page.text()
        token = re.search(r'data-customer-token="([^"]*)"', html).group(1)
        assert token == "", "a customer token was signed for an anonymous visitor"
        assert verify_customer_token(token, SECRET) is None
        assert "王女士" not in html and "李先生" not in html


@ATTACK
def test_demo_with_production_settings_refuses_to_start(redis_url, tmp_path):
    with pytest.raises(RuntimeError, match="DEMO"):
        create_app(config(tmp_path, redis_url, DEMO="1", XIAOBAO_ENV="production"))


async def test_the_demo_still_signs_its_demo_customers(redis_url, aiohttp_client, tmp_path):
    """Not an attack: `make run` (DEMO=1) keeps the storefront demo working."""
    client = await aiohttp_client(create_app(config(tmp_path, redis_url, DEMO="1")))
    html = await (await client.get("/shop?customer=c1001")).text()
    assert verify_customer_token(re.search(r'data-customer-token="([^"]*)"', html).group(1), SECRET) == "c1001"
