"""Deciding how to answer from ranked hits, and the payload channels render. No Rasa imports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

from bot.knowledge.kb import Entry
from bot.knowledge.retrieval import Hit

# Answer first (the way Taobao's and JD's assistants do): a good candidate is answered, with
# the next ones offered underneath as 「您可能还想问」. Confidence is the hybrid retrieval's
# (bot.knowledge.retrieval); calibrated with `scripts/bench_kb.py` (see README).
ANSWER_MIN_CONFIDENCE = 0.45
# Between these two the best candidate is still answered, under its title so the shopper sees
# which question was answered, unless two different topics are nearly tied: then we ask.
CLARIFY_MIN_CONFIDENCE = 0.3
# "Nearly tied": the runner-up's fused score is within this factor of the best one's.
TIE_RATIO = 1.08
SUGGESTIONS = 2
# A second question of the same message is answered too when its own best entry is this sure.
SECOND_ANSWER_MIN_CONFIDENCE = 0.5


@dataclass(frozen=True)
class Decision:
    kind: str  # "answer", "clarify" or "none"
    hits: Tuple[Hit, ...]
    related: Optional[Hit] = None  # the answer to a second question in the same message
    hedged: bool = False  # answered with moderate confidence: show which question is answered

    @property
    def best(self) -> Hit:
        return self.hits[0]

    @property
    def suggestions(self) -> Tuple[Hit, ...]:
        """「您可能还想问」: the next candidates, other than what is already answered."""
        shown = {self.best.entry.id} | ({self.related.entry.id} if self.related else set())
        return tuple(h for h in self.hits[1:] if h.entry.id not in shown)[:SUGGESTIONS]


def decide(hits: Sequence[Hit], second: Sequence[Sequence[Hit]] = ()) -> Decision:
    """How to answer a question from its ranked hits (best first). `second`: the ranked hits of
    the message's other questions, when it asks more than one (bot.nlu.question.split_questions)."""
    hits = tuple(hits)
    if not hits or hits[0].confidence < CLARIFY_MIN_CONFIDENCE:
        return Decision("none", hits)
    best = hits[0]
    if best.confidence < ANSWER_MIN_CONFIDENCE:
        runner_up = hits[1] if len(hits) > 1 else None
        tied = (
            runner_up is not None
            and runner_up.entry.topic != best.entry.topic
            and best.score < TIE_RATIO * runner_up.score
        )
        if tied:
            return Decision("clarify", hits)
    related = next(
        (
            other[0]
            for other in second
            if other
            and other[0].entry.id != best.entry.id
            and other[0].confidence >= SECOND_ANSWER_MIN_CONFIDENCE
        ),
        None,
    )
    return Decision("answer", hits, related, hedged=best.confidence < ANSWER_MIN_CONFIDENCE)


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
