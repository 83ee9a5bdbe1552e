"""Whether a message should go to a person, in which category, and how urgently. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Dict, Iterable, Optional, Sequence

import yaml

from bot.paths import KNOWLEDGE_DIR

URGENT, HIGH, NORMAL = "urgent", "high", "normal"
PRIORITY_ORDER = {URGENT: 0, HIGH: 1, NORMAL: 2}


@dataclass(frozen=True)
class Escalation:
    category: str  # safety, complaint, human_request, bot_failed
    priority: str  # urgent, high, normal


@lru_cache(maxsize=1)
def rules() -> Dict[str, Any]:
    return yaml.safe_load((KNOWLEDGE_DIR / "escalation.yml").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def handoff_texts() -> Dict[str, Any]:
    """What the handoff says on its own (knowledge/handoff_messages.yml): SLA notices, the agent
    prefix, complaint outcomes. Shared by the action server and the agent console."""
    return yaml.safe_load((KNOWLEDGE_DIR / "handoff_messages.yml").read_text(encoding="utf-8"))


# Within the same clause, right before a trigger word, these say it did not happen or is only
# feared: 「我没有受伤」「还好没着火」「不想投诉」「担心会漏电」 are not incidents or anger.
# (「不小心烫伤了」 and 「没过多久就起火了」 are.)
_NEGATED = re.compile(
    r"(?:没有|没|未曾|未|并未|无|不想|不是|不打算|不用|不会|不至于|别|免得|以免|防止|避免|担心|害怕|怕|万一|"
    r"会不会|是否|如果|要是|假如|不然|一定要|非得|难道要)[^,，.。!！?？;；\n]{0,3}$"
)
# Phrases that contain a negator but deny nothing: 「没过多久就起火了」「不小心烫伤」.
_NOT_NEGATIONS = re.compile(r"不小心|没过多久|没多久|没几天|没两天|没一会儿?|没想到|没注意|没留意|无意")
_CLAUSE_START = re.compile(r"[,，.。!！?？;；\n]")


def _occurrences(text: str, word: str) -> Iterable[int]:
    start = text.find(word)
    while start >= 0:
        yield start
        start = text.find(word, start + 1)


def _negated(text: str, start: int) -> bool:
    before = text[max(0, start - 12) : start]
    before = _CLAUSE_START.split(before)[-1]
    return bool(before) and bool(_NEGATED.search(_NOT_NEGATIONS.sub("", before)))


def _mentions(text: str, key: str) -> bool:
    """A trigger word that is said, not denied: 「没有受伤」 is no injury. Words made of digits
    (315, 12315) only count on their own, never inside an order or phone number."""
    for word in map(str, rules()[key]):
        for start in _occurrences(text, word):
            end = start + len(word)
            if word.isdigit() and (text[start - 1 : start].isdigit() or text[end : end + 1].isdigit()):
                continue
            if not _negated(text, start):
                return True
    return False


def escalation_for(text: str, intent: Optional[str], recent_intents: Sequence[str] = ()) -> Optional[Escalation]:
    """The escalation this message calls for, or None when 小保 should keep answering.

    recent_intents: the intents of earlier messages in this conversation, oldest first.
    """
    text = text or ""
    if _mentions(text, "safety"):
        return Escalation("safety", URGENT)
    angry = _mentions(text, "anger") or re.search(r"[!！]{%d,}" % rules()["exclamations"], text)
    if intent == "complain" or angry:
        return Escalation("complaint", HIGH if angry else NORMAL)
    if intent == "request_human" or _mentions(text, "human"):
        return Escalation("human_request", NORMAL)
    if intent == "nlu_fallback" and list(recent_intents[-1:]) == ["nlu_fallback"]:
        return Escalation("bot_failed", NORMAL)
    return None
