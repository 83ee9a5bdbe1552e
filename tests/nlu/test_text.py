import pytest

from bot.nlu.text import NLU_HEAD_CHARS, NLU_TAIL_CHARS, is_unreadable, nlu_windows


def test_short_text_is_read_whole():
    assert nlu_windows("我要退货") == [(0, "我要退货")]


def test_long_text_is_read_at_both_ends_with_true_offsets():
    text = "前" * 5000 + "我要退货"
    windows = nlu_windows(text)
    assert [len(fragment) for _offset, fragment in windows] == [NLU_HEAD_CHARS, NLU_TAIL_CHARS]
    offset, fragment = windows[-1]
    assert text[offset:] == fragment and fragment.endswith("我要退货")


@pytest.mark.parametrize("text", ["", None, "   ", "😂😂😂", "。。。！！", "🙏\n👍"])
def test_messages_without_words_are_unreadable(text):
    assert is_unreadable(text)


@pytest.mark.parametrize("text", ["好", "ok", "2026112012345678", "😡退钱", "１２３"])
def test_messages_with_words_are_readable(text):
    assert not is_unreadable(text)
