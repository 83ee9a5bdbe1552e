"""Training and held-out data stay honest: enough examples, no duplicates, no leakage."""

from __future__ import annotations

import unicodedata
from collections import Counter
from typing import Dict, List

import pytest
import yaml
from rasa.shared.nlu.training_data.loading import load_data

from bot.paths import ROOT

MAIN_INTENTS = [
    "greet", "goodbye", "thanks", "affirm", "deny", "bot_challenge", "out_of_scope",
    "request_human", "ask_rights", "ask_policy", "request_return", "order_status",
    "complain", "inform",
]


def normalise(text: str) -> str:
    return "".join(ch for ch in text.lower() if unicodedata.category(ch)[0] in "LN")


@pytest.fixture(scope="module")
def training() -> Dict[str, List[str]]:
    data = load_data(str(ROOT / "data" / "nlu"))
    by_intent: Dict[str, List[str]] = {}
    for message in data.intent_examples:
        by_intent.setdefault(message.get("intent"), []).append(message.get("text"))
    return by_intent


@pytest.fixture(scope="module")
def heldout() -> List[dict]:
    return yaml.safe_load((ROOT / "tests/data/nlu_heldout.yml").read_text(encoding="utf-8"))["examples"]


@pytest.mark.parametrize("intent", MAIN_INTENTS)
def test_each_main_intent_has_at_least_40_examples(training, intent):
    assert len(training.get(intent, [])) >= 40


def test_no_duplicate_training_examples(training):
    counts = Counter(normalise(t) for texts in training.values() for t in texts if normalise(t))
    assert [text for text, n in counts.items() if n > 1] == []


def test_heldout_is_large_and_never_seen_in_training(training, heldout):
    seen = {normalise(t) for texts in training.values() for t in texts}
    assert len(heldout) >= 150
    assert [e["text"] for e in heldout if normalise(e["text"]) in seen] == []


def test_heldout_labels_exist_in_the_domain(heldout):
    from rasa.shared.core.domain import Domain

    domain = Domain.load(str(ROOT / "domain"))
    assert {e["intent"] for e in heldout} <= set(domain.intents)
    assert {ent["entity"] for e in heldout for ent in e.get("entities") or []} <= set(domain.entities)
    assert set(MAIN_INTENTS) <= {e["intent"] for e in heldout}
