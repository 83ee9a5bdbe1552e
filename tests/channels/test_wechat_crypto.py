import base64

import pytest

from bot.channels.wechat.crypto import MessageCrypto, WeChatCryptoError, check_signature, signature
from bot.channels.wechat.messages import WeChatParseError, fields, parse

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, as WeChat issues them
APPID = "wx1234567890abcdef"


def test_signature_matches_the_official_worked_example():
    assert signature("AAAAA", "1714036504", "1514711492") == "f464b24fc39322e44b38aa78f5edd27bd1441696"
    assert check_signature("AAAAA", "f464b24fc39322e44b38aa78f5edd27bd1441696", "1714036504", "1514711492")
    assert not check_signature("AAAAA", "0" * 40, "1714036504", "1514711492")
    assert not check_signature("", signature("", "1", "2"), "1", "2")  # an unconfigured token accepts nothing


def test_encrypt_then_decrypt_round_trips_the_documented_layout():
    crypto = MessageCrypto("tok", AES_KEY, APPID)
    encrypted = crypto.encrypt("<xml><Content>你好</Content></xml>", random16=b"r" * 16)
    raw = base64.b64decode(encrypted)
    assert len(raw) % 32 == 0
    assert crypto.decrypt(encrypted) == "<xml><Content>你好</Content></xml>"


@pytest.mark.parametrize(
    "mangle",
    [lambda e: e[:-8], lambda e: "not base64!!", lambda e: base64.b64encode(b"x" * 31).decode(), lambda e: ""],
    ids=["truncated", "not-base64", "bad-length", "empty"],
)
def test_malformed_ciphertext_is_rejected(mangle):
    crypto = MessageCrypto("tok", AES_KEY, APPID)
    with pytest.raises(WeChatCryptoError):
        crypto.decrypt(mangle(crypto.encrypt("<xml/>")))


def test_ciphertext_for_another_appid_is_rejected():
    other = MessageCrypto("tok", AES_KEY, "wxsomebodyelse").encrypt("<xml/>")
    with pytest.raises(WeChatCryptoError, match="another appid"):
        MessageCrypto("tok", AES_KEY, APPID).decrypt(other)


def test_xml_and_json_pushes_parse_alike():
    xml = b"<xml><ToUserName>gh_1</ToUserName><FromUserName>oU1</FromUserName><CreateTime>1700000000</CreateTime><MsgType>text</MsgType><Content>\xe4\xbd\xa0\xe5\xa5\xbd</Content><MsgId>42</MsgId></xml>"
    json_body = '{"ToUserName": "gh_1", "FromUserName": "oU1", "CreateTime": 1700000000, "MsgType": "text", "Content": "你好", "MsgId": 42}'.encode()
    assert parse(fields(xml)) == parse(fields(json_body))
    assert parse(fields(xml)).content == "你好" and parse(fields(xml)).dedupe_key == "42"


def test_events_and_unknown_types_parse_without_crashing():
    event = parse(fields(b'{"FromUserName": "oU1", "CreateTime": 1, "MsgType": "event", "Event": "user_enter_tempsession", "SessionFrom": "order=2026112012345678"}'))
    assert (event.kind, event.session_from, event.dedupe_key) == ("event", "order=2026112012345678", "oU1:1:user_enter_tempsession")
    assert parse(fields(b'{"FromUserName": "oU1", "MsgType": "voice"}')).kind == "voice"


@pytest.mark.parametrize("body", [b"", b"<xml><unclosed>", b'<!DOCTYPE x [<!ENTITY a "b">]><xml/>', b"[1, 2]", b"x" * 70000])
def test_garbage_pushes_are_refused(body):
    with pytest.raises((WeChatParseError, ValueError)):
        parse(fields(body))
