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


@pytest.fixture(scope="module")
def realistic() -> List[dict]:
    messages = []
    for path in sorted((ROOT / "tests/data/realistic").glob("*.yml")):
        for card in yaml.safe_load(path.read_text(encoding="utf-8"))["cards"]:
            assert str(card.get("card", "")).strip(), f"{path.name}: a card without its scenario"
            messages.extend(card["messages"])
    return messages


def test_realistic_set_is_large_labelled_and_never_in_training_or_the_knowledge_base(training, realistic):
    from bot.knowledge.kb import load_entries

    assert len(realistic) >= 500
    seen = {normalise(t) for texts in training.values() for t in texts}
    seen |= {normalise(q) for e in load_entries() for q in (e.title, *e.questions)}
    assert [m["text"] for m in realistic if normalise(m["text"]) in seen] == []
    behaviours = {"rights", "policy", "return", "order", "human", "out_of_scope", "smalltalk"}
    assert all(m["accept"] and set(m["accept"]) <= behaviours for m in realistic)
    assert all(m.get("articles") for m in realistic if "rights" in m["accept"])


def test_realistic_articles_exist_in_the_statutes_we_hold_or_in_shared(realistic):
    from bot.knowledge.laws import chinese_to_int

    titles = {}
    for folder in (ROOT / "knowledge/laws", ROOT / "knowledge/laws/extra", ROOT.parent / "shared/laws",
                   ROOT.parent / "shared/laws/extra"):
        for path in folder.glob("*.md"):
            lines = path.read_text(encoding="utf-8").splitlines()
            title = next(line[2:].strip() for line in lines if line.startswith("# "))
            import re

            numbers = {chinese_to_int(m.group(1)) for line in lines for m in [re.match(r"^第([零〇一二两三四五六七八九十百千]+)条", line)] if m}
            titles.setdefault(title, set()).update(numbers)
    missing = []
    for message in realistic:
        for item in message.get("articles") or []:
            law, _, number = str(item).rpartition(":")
            if law in titles and int(number) not in titles[law]:
                missing.append(item)
            if law not in titles and (ROOT.parent / "shared/laws").exists():
                missing.append(item)
    assert missing == []
