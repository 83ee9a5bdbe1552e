"""Attack (issue 13, "return-photo-reference"): back a return with a photo that is not one's own.

The photo is uploaded through the real web app (aiohttp test client); the real return-form
validation then runs against the same Redis. Only an upload the same conversation made may be a
return's photo evidence: not any string a client sends, not another conversation's upload.
"""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis
from aiohttp import FormData
from cryptography.fernet import Fernet
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import actions.returns as returns
import actions.services as services
from bot.console.app import ConsoleConfig, create_app
from bot.settings import Settings
from tests.console.test_console import RASA_TOKEN, FakeRasa

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.fixture
async def web(redis_url, aiohttp_server, aiohttp_client, tmp_path, monkeypatch):
    rasa_server = await aiohttp_server(FakeRasa().app())
    settings = Settings.from_env({"XIAOBAO_VAR_DIR": str(tmp_path), "STORE_SIGNING_SECRET": "shop-secret"})
    config = ConsoleConfig(redis_url=redis_url, rasa_url=str(rasa_server.make_url("")), rasa_token=RASA_TOKEN,
                           session_key=Fernet.generate_key(), settings=settings, rasa_public_url="http://127.0.0.1:5999")
    client = aioredis.Redis.from_url(redis_url)
    monkeypatch.setattr(services, "limits_redis", lambda: client, raising=False)
    app_client = await aiohttp_client(create_app(config))
    app_client.xb_settings = settings
    yield app_client
    await client.close()


async def upload(web, session_id: str = "") -> str:
    form = FormData()
    form.add_field("image", PNG, filename="broken.png", content_type="image/png")
    response = await web.post("/chat/upload" + (f"?session_id={session_id}" if session_id else ""), data=form)
    assert response.status == 200
    return (await response.json())["url"]


def evidence_turn(sender: str, photos, channel: str = "socketio") -> Tracker:
    metadata = {"attachments": list(photos)}
    latest = {"text": "", "intent": {"name": "inform", "confidence": 1.0}, "entities": [], "metadata": metadata}
    return Tracker(sender, {"requested_slot": "return_evidence"}, latest,
                   [{"event": "user", "text": "", "parse_data": latest, "input_channel": channel, "metadata": metadata}],
                   False, None, {"name": "return_form"}, "action_listen")


async def validate(sender: str, photo: str, channel: str = "socketio"):
    dispatcher = CollectingDispatcher()
    result = await returns.ValidateReturnForm().validate_return_evidence(
        [f"photo:{photo}"], dispatcher, evidence_turn(sender, [photo], channel), {})
    return result, [m["response"] for m in dispatcher.messages]


def session() -> str:
    return uuid.uuid4().hex


def widget_session(web):
    """(what the widget sends as session_id, the conversation id it stands for)."""
    try:
        from bot.webchat.conversation_ids import new_session, session_secret, verify_session, web_conversation
    except ImportError:  # before signed web sessions: the widget's session id is the conversation id
        plain = session()
        return plain, plain
    secret = session_secret(web.xb_settings)
    token = new_session(secret)
    return token, web_conversation(verify_session(token, secret))


@pytest.mark.attack("return-photo-reference")
async def test_any_string_is_not_photo_evidence(web):
    for made_up in ("https://evil.example/any.jpg", "wechat-media:" + "0" * 32 + ".jpg", "../../etc/passwd",
                    "http://127.0.0.1/uploads/" + uuid.uuid4().hex + ".jpg"):
        result, replies = await validate(session(), made_up)
        assert result["return_evidence"] is None, f"{made_up!r} was accepted as a photo"
        assert replies == ["utter_evidence_photo_unknown"]


@pytest.mark.attack("return-photo-reference")
async def test_another_conversations_upload_is_not_photo_evidence(web):
    token, victim = widget_session(web)
    attacker = session()
    url = await upload(web, token)
    result, _ = await validate(attacker, url)
    assert result["return_evidence"] is None, "another conversation's upload backed a return"
    result, _ = await validate(victim, url)
    assert result["return_evidence"] == [f"photo:{url}"]


@pytest.mark.attack("return-photo-reference")
async def test_an_upload_used_by_one_conversation_cannot_be_reused_by_another(web):
    first, second = session(), session()
    url = await upload(web)  # the widget uploads without naming its conversation
    assert (await validate(first, url))[0]["return_evidence"] == [f"photo:{url}"]
    assert (await validate(first, url))[0]["return_evidence"] == [f"photo:{url}"]  # again: still its own
    assert (await validate(second, url))[0]["return_evidence"] is None


async def test_a_photo_the_wechat_channel_stored_is_the_senders(web):
    reference = f"wechat-media:{uuid.uuid4().hex}.jpg"
    openid = f"o{uuid.uuid4().hex}"
    assert (await validate(openid, reference, channel="wechat"))[0]["return_evidence"] == [f"photo:{reference}"]
    # The same reference sent over another channel by someone else is refused.
    assert (await validate(session(), reference, channel="rest"))[0]["return_evidence"] is None
