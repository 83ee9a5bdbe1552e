"""The WeChat channel end to end: signed and encrypted pushes to Rasa, replies via a fake WeChat API."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
import redis

from bot.channels.polite import system_message
from bot.channels.wechat.crypto import MessageCrypto, signature
from tests.integration.conftest import WECHAT, matches_response

pytestmark = pytest.mark.integration
TOKEN = WECHAT["WECHAT_TOKEN"]
CRYPTO = MessageCrypto(TOKEN, WECHAT["WECHAT_AES_KEY"], WECHAT["WECHAT_APPID"])


def push(stack, message: dict, encrypted: bool = False, forge: bool = False, as_xml: bool = False):
    timestamp, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
    if as_xml:
        body = ("<xml>" + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in message.items()) + "</xml>").encode()
    else:
        body = json.dumps(message, ensure_ascii=False).encode()
    query = {"timestamp": timestamp, "nonce": nonce, "signature": signature(TOKEN, timestamp, nonce)}
    if encrypted:
        encrypt = CRYPTO.encrypt(body.decode())
        body = json.dumps({"ToUserName": "gh_test", "Encrypt": encrypt}).encode()
        query.update(encrypt_type="aes", msg_signature=signature(TOKEN, timestamp, nonce, encrypt))
    if forge:
        query["signature"] = query["msg_signature"] = "0" * 40
    url = f"http://127.0.0.1:{stack.rasa_port}/webhooks/wechat/webhook?" + urllib.parse.urlencode(query)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10) as response:
            return response.status, response.read().decode(), time.monotonic() - started
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), time.monotonic() - started


def text(openid: str, content: str, msg_id: str = None) -> dict:
    return {"ToUserName": "gh_test", "FromUserName": openid, "CreateTime": int(time.time()), "MsgType": "text",
            "Content": content, "MsgId": msg_id or str(uuid.uuid4().int)[:18]}


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


def test_plain_xml_text_is_acknowledged_at_once_and_answered_through_the_send_api(stack):
    openid = f"oTest{uuid.uuid4().hex[:8]}"
    status, body, seconds = push(stack, text(openid, "你好"), as_xml=True)
    assert (status, body) == (200, "success") and seconds < 5
    (greeting,) = replies(stack, openid)
    assert matches_response(greeting, "utter_greet")
    assert {"touser": openid, "command": "Typing"} in stack.wechat.typing


def test_forged_signature_is_refused_and_nothing_is_processed(stack):
    openid = f"oTest{uuid.uuid4().hex[:8]}"
    assert push(stack, text(openid, "你好"), forge=True)[0] == 403
    assert push(stack, text(openid, "你好"), encrypted=True, forge=True)[0] == 403
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
    assert push(stack, text(openid, "我要退货"), encrypted=True)[1] == "success"
    options = replies(stack, openid, before + 1)[-1]
    assert "请选择要办理的订单" in options and "\n1. " in options and "回复数字" in options
    push(stack, text(openid, "1"), encrypted=True)
    assert "这笔订单里有以下商品" in replies(stack, openid, before + 2)[-1]
    push(stack, text(openid, "算了"), encrypted=True)
    replies(stack, openid, before + 3)


def test_malformed_or_foreign_ciphertext_is_rejected(stack):
    timestamp, nonce = str(int(time.time())), "n1"
    foreign = MessageCrypto(TOKEN, WECHAT["WECHAT_AES_KEY"], "wxsomeoneelse0001").encrypt("<xml/>")
    for encrypt in (foreign, foreign[:-10], "###"):
        query = {"timestamp": timestamp, "nonce": nonce, "encrypt_type": "aes",
                 "msg_signature": signature(TOKEN, timestamp, nonce, encrypt)}
        url = f"http://127.0.0.1:{stack.rasa_port}/webhooks/wechat/webhook?" + urllib.parse.urlencode(query)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(url, data=json.dumps({"Encrypt": encrypt}).encode()))
        assert refused.value.code == 400


def test_entering_from_an_order_page_greets_with_the_order(stack):
    openid = f"oTest{uuid.uuid4().hex[:8]}"
    event = {"ToUserName": "gh_test", "FromUserName": openid, "CreateTime": int(time.time()), "MsgType": "event",
             "Event": "user_enter_tempsession", "SessionFrom": "order=2026112012345678"}
    assert push(stack, event)[1] == "success"
    assert matches_response(replies(stack, openid)[0], "utter_greet")
    tracker = stack.api(f"/conversations/{openid}/tracker", token=stack.token)
    assert tracker["slots"]["order_id"] == "2026112012345678"


def test_unknown_message_types_are_ignored(stack):
    openid = f"oTest{uuid.uuid4().hex[:8]}"
    voice = {"FromUserName": openid, "CreateTime": int(time.time()), "MsgType": "voice", "MsgId": "9"}
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
    for n in range(30):
        push(stack, text(flooder, f"刷屏{n}"))
    assert push(stack, text(other, "你好"))[1] == "success"
    replies(stack, other)
    time.sleep(3)
    events = stack.api(f"/conversations/{flooder}/tracker", token=stack.token)["events"]
    assert len([e for e in events if e["event"] == "user"]) <= 12  # at most 5 a second got through
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
    events = stack.api(f"/conversations/{openid}/tracker", token=stack.token)["events"]
    attachments = [e["metadata"]["attachments"] for e in events if e["event"] == "user"][0]
    assert attachments[0].startswith("wechat-media:")

    push(stack, text(openid, "转人工"))
    assert "工单号" in replies(stack, openid, 2)[-1]

    async def agent_reply():
        api = RasaApi(f"http://127.0.0.1:{stack.rasa_port}", stack.token)
        await api.send_bot_message(openid, "👩‍💼 人工客服小王：您好", metadata={"sent_by": "agent"})
        await api.close()

    asyncio.run(agent_reply())
    assert replies(stack, openid, 3)[-1] == "👩‍💼 人工客服小王：您好"


def test_an_oversized_photo_is_refused_politely(stack):
    openid = f"oTest{uuid.uuid4().hex[:8]}"
    photo = {"ToUserName": "gh_test", "FromUserName": openid, "CreateTime": int(time.time()), "MsgType": "image",
             "PicUrl": "http://mmbiz.example/huge.jpg", "MediaId": "huge", "MsgId": str(uuid.uuid4().int)[:18]}
    assert push(stack, photo)[1] == "success"
    assert replies(stack, openid) == [system_message("image_rejected")]
