"""Deciding how to answer from ranked hits, and the payload channels render. No Rasa imports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

from bot.knowledge.kb import Entry
from bot.knowledge.retrieval import Hit

# Calibrated on tests/data/kb_heldout.yml with `make bench-kb` (see README).
ANSWER_MIN_CONFIDENCE = 0.45
CLARIFY_MIN_CONFIDENCE = 0.2
# The runner-up must trail by this factor, or the question is ambiguous and we ask.
CLEAR_WIN_RATIO = 1.2
# A second entry from another topic is offered too when it explains this much of the question
# that the answer does not (a question that mixes two topics).
RELATED_MIN_ADDED = 0.2
RELATED_MIN_CONFIDENCE = 0.35


@dataclass(frozen=True)
class Decision:
    kind: str  # "answer", "clarify" or "none"
    hits: Tuple[Hit, ...]
    related: Optional[Hit] = None

    @property
    def best(self) -> Hit:
        return self.hits[0]


def decide(hits: Sequence[Hit]) -> Decision:
    hits = tuple(hits)
    if not hits or hits[0].confidence < CLARIFY_MIN_CONFIDENCE:
        return Decision("none", hits)
    best = hits[0]
    runner_up = hits[1] if len(hits) > 1 else None
    clear_win = runner_up is None or best.score >= CLEAR_WIN_RATIO * runner_up.score
    if best.confidence >= ANSWER_MIN_CONFIDENCE and clear_win:
        related = next(
            (
                h
                for h in hits[1:]
                if h.entry.topic != best.entry.topic
                and h.adds >= RELATED_MIN_ADDED
                and h.confidence >= RELATED_MIN_CONFIDENCE
            ),
            None,
        )
        return Decision("answer", hits, related)
    return Decision("clarify", hits)


def answer_payload(entry: Entry, confidence: float) -> Dict[str, Any]:
    """The custom payload a channel renders as a citation card (or a policy note)."""
    if entry.kind == "policy":
        return {"type": "policy_answer", "entry_id": entry.id, "confidence": round(confidence, 3)}
    return {
        "type": "rights_answer",
        "entry_id": entry.id,
        "confidence": round(confidence, 3),
        "citations": [c.payload() for c in entry.citations],
    }


def intent_for(entry: Entry) -> str:
    return "ask_policy" if entry.kind == "policy" else "ask_rights"
