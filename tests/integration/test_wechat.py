"""The WeChat channel end to end: pushes as WeChat sends them in 安全模式 (encrypted, signed with
msg_signature) to Rasa, replies via a fake WeChat API."""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
import redis

from bot.channels.polite import system_message
from bot.channels.wechat.crypto import MessageCrypto, signature
from tests.channels.fake_wechat import WeChatPusher
from tests.integration.conftest import WECHAT, matches_response

pytestmark = pytest.mark.integration
TOKEN = WECHAT["WECHAT_TOKEN"]
PUSHER = WeChatPusher(TOKEN, WECHAT["WECHAT_APPID"], WECHAT["WECHAT_AES_KEY"], WECHAT["WECHAT_ORIGINAL_ID"])


def post(stack, query: dict, body: bytes):
    url = f"http://127.0.0.1:{stack.rasa_port}/webhooks/wechat/webhook?" + urllib.parse.urlencode(query)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10) as response:
            return response.status, response.read().decode(), time.monotonic() - started
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), time.monotonic() - started


def push(stack, message: dict, forge: bool = False, as_xml: bool = False):
    """The push WeChat sends for `message` (encrypted); `forge` spoils its signatures."""
    query, body = PUSHER.request(message, as_xml=as_xml)
    if forge:
        query["signature"] = query["msg_signature"] = "0" * 40
    return post(stack, query, body)


def text(openid: str, content: str, msg_id: str = None) -> dict:
    return PUSHER.text(openid, content, msg_id)


def replies(stack, openid: str, count: int = 1, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = stack.wechat.texts_to(openid)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"only {stack.wechat.texts_to(openid)} reached {openid}")


def test_url_verification(stack):
    timestamp, nonce = "1714036504", "1514711492"
    good = {"signature": signature(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce, "echostr": "hello"}
    url = f"http://127.0.0.1:{stack.rasa_port}/webhooks/wechat/webhook?"
    with urllib.request.urlopen(url + urllib.parse.urlencode(good)) as response:
        assert response.read() == b"hello"
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(url + urllib.parse.urlencode({**good, "signature": "0" * 40}))
    assert denied.value.code == 403


def test_xml_text_is_acknowledged_at_once_and_answered_through_the_send_api(stack):
    openid = f"oTest{uuid.uuid4().hex[:8]}"
    status, body, seconds = push(stack, text(openid, "你好"), as_xml=True)
    assert (status, body) == (200, "success") and seconds < 5
    (greeting,) = replies(stack, openid)
    assert matches_response(greeting, "utter_greet")
    assert {"touser": openid, "command": "Typing"} in stack.wechat.typing


def test_forged_signature_is_refused_and_nothing_is_processed(stack):
    openid = f"oTest{uuid.uuid4().hex[:8]}"
    assert push(stack, text(openid, "你好"), forge=True)[0] == 403
    assert push(stack, text(openid, "你好"), as_xml=True, forge=True)[0] == 403
    time.sleep(2)
    assert stack.wechat.texts_to(openid) == []


def test_a_replayed_msgid_is_processed_once(stack):
    openid = f"oTest{uuid.uuid4().hex[:8]}"
    message = text(openid, "你好", msg_id="88001234567890")
    assert push(stack, message)[1] == "success"
    assert push(stack, message)[1] == "success"  # WeChat's retry
    replies(stack, openid)
    time.sleep(2)
    assert len(stack.wechat.texts_to(openid)) == 1


def test_encrypted_json_push_from_a_bound_openid_with_numbered_options(stack):
    openid = "oDemoOpenId0001"  # bound to demo customer c1001
    before = len(stack.wechat.texts_to(openid))
    assert push(stack, text(openid, "我要退货"))[1] == "success"
    options = replies(stack, openid, before + 1)[-1]
    assert "请选择要办理的订单" in options and "\n1. " in options and "回复数字" in options
    push(stack, text(openid, "1"))
    assert "这笔订单里有以下商品" in replies(stack, openid, before + 2)[-1]
    push(stack, text(openid, "算了"))
    replies(stack, openid, before + 3)


def test_malformed_or_foreign_ciphertext_is_rejected(stack):
    foreign = MessageCrypto(TOKEN, WECHAT["WECHAT_AES_KEY"], "wxsomeoneelse0001").encrypt("<xml/>")
    for encrypt in (foreign, foreign[:-10], "###"):
        timestamp, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
        query = {"timestamp": timestamp, "nonce": nonce, "encrypt_type": "aes",
                 "msg_signature": signature(TOKEN, timestamp, nonce, encrypt)}
        assert post(stack, query, json.dumps({"Encrypt": encrypt}).encode())[0] == 400


def test_entering_from_an_order_page_greets_with_the_order(stack):
    openid = f"oTest{uuid.uuid4().hex[:8]}"
    event = {"ToUserName": "gh_test", "FromUserName": openid, "CreateTime": int(time.time()), "MsgType": "event",
             "Event": "user_enter_tempsession", "SessionFrom": "order=2026112012345678"}
    assert push(stack, event)[1] == "success"
    assert matches_response(replies(stack, openid)[0], "utter_greet")
    tracker = stack.api(f"/conversations/wx:{openid}/tracker", token=stack.token)
    assert tracker["slots"]["order_id"] == "2026112012345678"


def test_unknown_message_types_are_ignored(stack):
    openid = f"oTest{uuid.uuid4().hex[:8]}"
    voice = {"ToUserName": "gh_test", "FromUserName": openid, "CreateTime": int(time.time()), "MsgType": "voice",
             "MsgId": "9"}
    assert push(stack, voice)[:2] == (200, "success")


def test_undeliverable_messages_are_kept_when_the_quota_is_used_up(stack):
    openid = f"oTest{uuid.uuid4().hex[:8]}"
    stack.wechat.scripted_errors = [45047]
    push(stack, text(openid, "你好"))
    client = redis.Redis.from_url(stack.redis_url)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not client.llen(f"xb:wechat:undelivered:{openid}"):
        time.sleep(0.1)
    kept = [json.loads(item) for item in client.lrange(f"xb:wechat:undelivered:{openid}", 0, -1)]
    assert kept and kept[0]["errcode"] == 45047 and matches_response(kept[0]["text"], "utter_greet")


def test_a_flooding_sender_is_limited_without_slowing_others(stack):
    flooder, other = f"oFlood{uuid.uuid4().hex[:6]}", f"oTest{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    for n in range(30):
        push(stack, text(flooder, f"刷屏{n}"))
    seconds = time.monotonic() - started  # longer when the server is busy with the turns let in
    assert push(stack, text(other, "你好"))[1] == "success"
    replies(stack, other)
    time.sleep(3)
    events = stack.api(f"/conversations/wx:{flooder}/tracker", token=stack.token)["events"]
    let_in = len([e for e in events if e["event"] == "user"])
    assert let_in <= max(12, 5 * (math.ceil(seconds) + 1)) and let_in < 30  # at most 5 a second got through
    assert system_message("slow_down") in stack.wechat.texts_to(flooder)  # told once a second, not 25 times
    assert stack.wechat.texts_to(flooder).count(system_message("slow_down")) <= 3


def test_a_photo_is_downloaded_at_once_and_agent_replies_go_out_through_the_same_sender(stack):
    import asyncio

    from bot.rasa_api import RasaApi

    openid = f"oTest{uuid.uuid4().hex[:8]}"
    photo = {"ToUserName": "gh_test", "FromUserName": openid, "CreateTime": int(time.time()), "MsgType": "image",
             "PicUrl": "http://mmbiz.example/1.jpg", "MediaId": "media-123", "MsgId": str(uuid.uuid4().int)[:18]}
    assert push(stack, photo)[1] == "success"
    replies(stack, openid)
    events = stack.api(f"/conversations/wx:{openid}/tracker", token=stack.token)["events"]
    attachments = [e["metadata"]["attachments"] for e in events if e["event"] == "user"][0]
    assert attachments[0].startswith("wechat-media:")

    push(stack, text(openid, "转人工"))
    assert "工单号" in replies(stack, openid, 2)[-1]

    async def agent_reply():
        api = RasaApi(f"http://127.0.0.1:{stack.rasa_port}", stack.token)
        await api.send_bot_message(f"wx:{openid}", "👩‍💼 人工客服小王：您好", metadata={"sent_by": "agent"})
        await api.close()

    asyncio.run(agent_reply())
    assert replies(stack, openid, 3)[-1] == "👩‍💼 人工客服小王：您好"


def test_an_oversized_photo_is_refused_politely(stack):
    openid = f"oTest{uuid.uuid4().hex[:8]}"
    photo = {"ToUserName": "gh_test", "FromUserName": openid, "CreateTime": int(time.time()), "MsgType": "image",
             "PicUrl": "http://mmbiz.example/huge.jpg", "MediaId": "huge", "MsgId": str(uuid.uuid4().int)[:18]}
    assert push(stack, photo)[1] == "success"
    assert replies(stack, openid) == [system_message("image_rejected")]


@pytest.mark.attack("wechat-forged-push")
def test_a_90_day_old_triple_cannot_push_a_return_request_as_a_bound_shopper(stack):
    """The review's proof, against the whole stack: the triple of a push logged 90 days ago, with
    a plaintext 「我要退货」 as the demo shopper bound to customer c1001. Refused; nothing reaches
    Rasa; that shopper's genuine encrypted pushes are still answered."""
    victim = "oDemoOpenId0001"
    before = len(stack.wechat.texts_to(victim))
    logged_query, _ = PUSHER.request(text(f"oThen{uuid.uuid4().hex[:8]}", "你好"),
                                     timestamp=str(int(time.time()) - 90 * 86400))
    forged = json.dumps(text(victim, "我要退货"), ensure_ascii=False).encode()
    assert post(stack, logged_query, forged)[0] == 403
    fresh_query, _ = PUSHER.request(text(victim, "你好"))  # a fresh triple, but a plaintext body
    assert post(stack, fresh_query, forged)[0] == 403
    time.sleep(2)
    assert len(stack.wechat.texts_to(victim)) == before
    genuine = text(victim, "你好")
    assert push(stack, genuine)[:2] == (200, "success")
    replies(stack, victim, before + 1)


@pytest.mark.attack("wechat-forged-push")
def test_a_genuine_push_replayed_is_refused(stack):
    openid = f"oTest{uuid.uuid4().hex[:8]}"
    query, body = PUSHER.request(text(openid, "你好"))
    assert post(stack, query, body)[:2] == (200, "success")
    replies(stack, openid)
    assert post(stack, query, body)[0] == 403


def test_quick_messages_are_all_answered_while_wechat_refuses_every_second_typing_call(stack):
    """Issue 12: WeChat answers 45081 to every second typing call; four quick messages from one
    shopper (under the 5 a second limit) each get their turn and their answer."""
    openid = f"oQuick{uuid.uuid4().hex[:8]}"
    messages = ["你好", "我要退货", "怎么申请退款", "谢谢"]
    stack.wechat.typing_refusal = 45081
    try:
        for content in messages:
            assert push(stack, text(openid, content))[:2] == (200, "success")
            time.sleep(0.21)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            events = stack.api(f"/conversations/wx:{openid}/tracker", token=stack.token)["events"]
            turns = [e["event"] for e in events if e["event"] in ("user", "bot")]
            if turns.count("user") == len(messages) and turns[-1] == "bot":
                break
            time.sleep(0.2)
    finally:
        stack.wechat.typing_refusal = None
    said = [e["text"] for e in events if e["event"] == "user"]
    assert sorted(said) == sorted(messages)
    assert all(turn == "bot" for turn, before in zip(turns[1:], turns) if before == "user")  # each one answered
    sent = replies(stack, openid, turns.count("bot"))
    assert len(sent) >= len(messages)
    attempts = [call for call in stack.wechat.typing + stack.wechat.typing_refused if call["touser"] == openid]
    assert attempts  # the indicator was tried, and refusals changed nothing
