"""Where to turn with a question outside a store's customer service. Pure, no Rasa imports."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict

import yaml

from bot.paths import KNOWLEDGE_DIR


@lru_cache(maxsize=1)
def _table() -> Dict[str, Any]:
    return yaml.safe_load((KNOWLEDGE_DIR / "out_of_scope.yml").read_text(encoding="utf-8"))


def out_of_scope_reply(text: str) -> str:
    """The polite refusal with the referral that fits the message (knowledge/out_of_scope.yml):
    labour disputes to 12333 and arbitration, other civil matters to 12348 or a lawyer, shops
    elsewhere to 12315; otherwise what 小保 can do."""
    table, text = _table(), text or ""
    referral = next(
        (r["text"] for r in table["referrals"] if any(str(w) in text for w in r["words"])), table["default"]
    )
    return f"{table['intro']}\n{referral}"
