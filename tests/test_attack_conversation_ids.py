"""Attack (issue 13, conversation-id-namespace): reaching a WeChat conversation by its openid.

The victim's WeChat conversation id is taken from the real WeChat channel (a text push handled by
WeChatInput). The attacker, who knows only the openid, then tries the three ways in:
- reading the transcript through the web app's `GET /chat/history?session_id=...`;
- posting into it through the real REST channel;
- joining its socket.io room through the real socket.io channel, to receive the agent's replies.
Each passes only when refused. The web chat's own history needs the signed session id.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest
from cryptography.fernet import Fernet

from bot.webchat.conversation_ids import new_session, session_secret, verify_session
from bot.channels.wechat.channel import WeChatInput
from bot.channels.wechat.messages import parse
from bot.console.app import ConsoleConfig, create_app
from bot.settings import Settings
from tests.channels.sanic_server import serve_channel
from tests.conftest import free_port
from tests.console.test_console import RASA_TOKEN, FakeRasa

ATTACK = pytest.mark.attack("conversation-id-namespace")
VICTIM = "oVictimOpenId00042"
SECRET = "store-signing-secret-for-tests"


@pytest.fixture(autouse=True)
def shared_secret(monkeypatch):
    monkeypatch.setenv("STORE_SIGNING_SECRET", SECRET)
    monkeypatch.delenv("WEBCHAT_SESSION_SECRET", raising=False)


async def wechat_conversation_of(openid: str, redis_url: str) -> str:
    """The conversation id the real WeChat channel gives a push from `openid`."""
    channel = WeChatInput(token="t", appid="wxappid", secret="s", aes_key="",
                          api_base=f"http://127.0.0.1:{free_port()}", redis_url=redis_url)
    seen = []

    async def handle(message):
        seen.append(message.sender_id)

    push = {"ToUserName": "gh_test", "FromUserName": openid, "CreateTime": int(time.time()), "MsgType": "text",
            "Content": "我要退货", "MsgId": str(time.time_ns())}
    await channel._process(parse(push), handle)
    for task in list(channel.tasks):
        task.cancel()
    assert len(seen) == 1
    return seen[0]


@pytest.fixture
async def web(redis_url, aiohttp_server, aiohttp_client, tmp_path):
    rasa = FakeRasa()
    rasa_server = await aiohttp_server(rasa.app())
    settings = Settings.from_env({"XIAOBAO_VAR_DIR": str(tmp_path), "STORE_SIGNING_SECRET": SECRET})
    config = ConsoleConfig(redis_url=redis_url, rasa_url=str(rasa_server.make_url("")), rasa_token=RASA_TOKEN,
                           session_key=Fernet.generate_key(), settings=settings, rasa_public_url="http://127.0.0.1:5999")
    return await aiohttp_client(create_app(config)), rasa, settings


@ATTACK
async def test_the_history_route_does_not_read_a_wechat_conversation(web, redis_url):
    client, rasa, _ = web
    conversation = await wechat_conversation_of(VICTIM, redis_url)
    rasa.events[conversation] = [{"event": "user", "text": "我的手机号是13812345678"}, {"event": "bot", "text": "好的"}]
    for guess in (VICTIM, conversation, "wx:" + VICTIM, f"{VICTIM}.{'A' * 43}"):
        response = await client.get("/chat/history", params={"session_id": guess})
        leaked = response.status == 200 and (await response.json())["messages"]
        assert not leaked, f"history of {conversation} read with session_id={guess!r}"


@ATTACK
async def test_web_history_needs_the_signed_session_not_just_its_id(web):
    client, rasa, settings = web
    token = new_session(session_secret(settings))
    session = verify_session(token, session_secret(settings))
    for conversation in (session, "web:" + session):
        rasa.events[conversation] = [{"event": "user", "text": "我的地址是…"}]
    assert (await client.get("/chat/history", params={"session_id": session})).status == 400
    forged = session + "." + "A" * 43
    assert (await client.get("/chat/history", params={"session_id": forged})).status == 400
    mine = await (await client.get("/chat/history", params={"session_id": token})).json()
    assert [m["text"] for m in mine["messages"]] == ["我的地址是…"]  # the widget itself still reads it


def post(port: int, sender: str) -> int:
    body = json.dumps({"sender": sender, "message": "我要退货"}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/webhooks/rest/webhook", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@ATTACK
async def test_rest_cannot_post_into_a_wechat_conversation(redis_url, monkeypatch):
    from bot.channels.rest import PoliteRestInput

    monkeypatch.setenv("REDIS_URL", redis_url)
    victim = await wechat_conversation_of(VICTIM, redis_url)
    async with serve_channel(PoliteRestInput()) as (port, messages):
        loop = asyncio.get_running_loop()
        for sender in (VICTIM, victim, "wx:" + VICTIM, "web:" + "a" * 32, "../conversations/" + VICTIM):
            await loop.run_in_executor(None, post, port, sender)
    reached = [m.sender_id for m in messages]
    assert victim not in reached, f"a REST client posted into {victim}"
    assert not any(":" in sender or "/" in sender for sender in reached)


@ATTACK
async def test_socketio_cannot_join_or_post_into_a_wechat_conversation(redis_url, monkeypatch):
    import socketio

    from bot.channels.socketio import PoliteSocketIOInput

    monkeypatch.setenv("REDIS_URL", redis_url)
    victim = await wechat_conversation_of(VICTIM, redis_url)
    channel = PoliteSocketIOInput.from_credentials({"user_message_evt": "user_uttered", "bot_message_evt": "bot_uttered",
                                                    "session_persistence": True, "metadata_key": "customData"})
    async with serve_channel(channel) as (port, messages):
        client, received = socketio.AsyncClient(reconnection=False), asyncio.Queue()
        client.on("bot_uttered", received.put)
        await client.connect(f"http://127.0.0.1:{port}", transports=["websocket"], socketio_path="/socket.io")
        try:
            for session_id in (VICTIM, victim):
                await client.emit("session_request", {"session_id": session_id})
                await client.emit("user_uttered", {"message": "我要退货", "session_id": session_id})
            await asyncio.sleep(1.0)
            while not received.empty():
                received.get_nowait()  # the attacker's own replies
            # An agent's reply to the victim's conversation (Rasa sends it to the room of that id)
            await channel.sio.emit("bot_uttered", {"text": "👩‍💼 您的退款已经提交"}, room=victim)
            await channel.sio.emit("bot_uttered", {"text": "👩‍💼 您的退款已经提交"}, room=VICTIM)
            await asyncio.sleep(1.0)
            stolen = [m for m in [received.get_nowait() for _ in range(received.qsize())] if "退款" in m.get("text", "")]
        finally:
            await client.disconnect()
    assert stolen == [], "the attacker's socket received the victim's agent replies"
    reached = [m.sender_id for m in messages]
    assert reached and victim not in reached and VICTIM not in reached
    assert all(sender.startswith("web:") for sender in reached)
