"""Where verified customers were seen (bot.risk.contacts), against a real Redis."""

from __future__ import annotations

import uuid

import pytest

from bot.risk.contacts import MAX_CONVERSATIONS, ContactBook, channel_of


@pytest.fixture
def book(redis):
    return ContactBook(redis, prefix=f"test:{uuid.uuid4().hex}:")


@pytest.mark.parametrize("conversation, input_channel, expected", [
    ("wx:oAbc", "wechat", "wechat"), ("wx:oAbc", None, "wechat"), ("web:0123456789abcdef", "socketio", "web"),
    ("shopper-1", "rest", "rest"), ("shopper-1", None, "rest"),
    ("shopper-1", "wechat", "rest"),  # a bare id is never WeChat's, whatever the message says
    ("wx:oAbc", "rest", "wechat"),  # the namespace, set by the channel itself, decides
])
def test_the_namespace_decides_the_channel(conversation, input_channel, expected):
    assert channel_of(conversation, input_channel) == expected


async def test_conversations_most_recent_first_with_channel(book):
    await book.remember("c1001", "web:aaaaaaaaaaaaaaaa", "web", at=100.0)
    await book.remember("c1001", "wx:oDemoOpenId0001", "wechat", at=300.0)
    await book.remember("c1001", "shopper-rest", "rest", at=200.0)
    await book.remember("c1001", "web:aaaaaaaaaaaaaaaa", "web", at=400.0)  # seen again: moves up, no copy
    assert await book.conversations_of("c1001") == [
        {"conversation_id": "web:aaaaaaaaaaaaaaaa", "channel": "web", "at": 400.0},
        {"conversation_id": "wx:oDemoOpenId0001", "channel": "wechat", "at": 300.0},
        {"conversation_id": "shopper-rest", "channel": "rest", "at": 200.0},
    ]
    assert await book.conversations_of("c1002") == []


async def test_only_the_most_recent_conversations_are_kept(book):
    for n in range(MAX_CONVERSATIONS + 5):
        await book.remember("c1001", f"s{n}", "rest", at=float(n))
    kept = await book.conversations_of("c1001")
    assert [c["conversation_id"] for c in kept] == [f"s{n}" for n in reversed(range(5, MAX_CONVERSATIONS + 5))]


async def test_contacts_expire_after_the_configured_days(redis):
    prefix = f"test:{uuid.uuid4().hex}:"
    await ContactBook(redis, prefix=prefix, ttl_days=2).remember("c1001", "s1", "rest")
    ttl = await redis.ttl(f"{prefix}contacts:c1001")
    assert 2 * 86400 - 5 < ttl <= 2 * 86400


async def test_an_unknown_channel_or_empty_ids_are_not_remembered(book):
    with pytest.raises(ValueError):
        await book.remember("c1001", "s1", "email")
    await book.remember("", "s1", "rest")
    await book.remember("c1001", "", "rest")
    assert await book.conversations_of("c1001") == [] and await book.conversations_of("") == []
