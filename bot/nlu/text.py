"""Plain text helpers for incoming messages, with no Rasa imports."""

from __future__ import annotations

import unicodedata
from typing import List, Tuple

# A long story usually sets the scene first and asks last, so NLU reads both ends.
NLU_HEAD_CHARS = 400
NLU_TAIL_CHARS = 200


def nlu_windows(text: str) -> List[Tuple[int, str]]:
    """The (offset, fragment) pieces of a message that NLU reads; the whole text when short."""
    if len(text) <= NLU_HEAD_CHARS + NLU_TAIL_CHARS:
        return [(0, text)]
    tail_start = len(text) - NLU_TAIL_CHARS
    return [(0, text[:NLU_HEAD_CHARS]), (tail_start, text[tail_start:])]


def is_unreadable(text: str | None) -> bool:
    """True for messages with no letter, digit or CJK character: empty, emoji or punctuation only."""
    if not text:
        return True
    return not any(unicodedata.category(ch)[0] in ("L", "N") for ch in text)
