"""Whether a message should go to a person, in which category, and how urgently. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Dict, Optional, Sequence

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


def _mentions(text: str, key: str) -> bool:
    return any(str(word) in text for word in rules()[key])


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
