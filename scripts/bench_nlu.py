"""Intent and entity quality of the trained model on the held-out messages.

Prints intent accuracy and macro-F1, a per-intent report, entity precision/recall/F1 over
(entity, value) pairs, and parse latency. With --min-intent-f1, exits 1 below that figure.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Set, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402

from bot.model import ensure_trained  # noqa: E402
from bot.paths import ROOT  # noqa: E402
from bot.settings import Settings  # noqa: E402

HELDOUT = ROOT / "tests" / "data" / "nlu_heldout.yml"


def load_heldout(path: Path = HELDOUT) -> List[Dict[str, Any]]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["examples"]


def entity_pairs(entities: List[Dict[str, Any]]) -> Set[Tuple[str, str]]:
    return {(e["entity"], str(e["value"])) for e in entities or []}


def entity_scores(expected: List[Set], predicted: List[Set]) -> Tuple[float, float, float]:
    tp = sum(len(e & p) for e, p in zip(expected, predicted))
    n_pred = sum(len(p) for p in predicted)
    n_exp = sum(len(e) for e in expected)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_exp if n_exp else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def percentile(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def parse_all(model: Path, texts: List[str]) -> Tuple[List[Dict], List[float]]:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    await agent.parse_message("预热")  # first call builds lazy state; not timed
    results, latencies = [], []
    for text in texts:
        started = time.perf_counter()
        results.append(await agent.parse_message(text))
        latencies.append((time.perf_counter() - started) * 1000)
    return results, latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--min-intent-f1", type=float, default=None)
    parser.add_argument("--show-errors", action="store_true")
    parser.add_argument("--model", type=Path, help="model archive (default: train if stale)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    import structlog  # Rasa logs every parse at debug level through structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    from sklearn.metrics import accuracy_score, classification_report, f1_score

    examples = load_heldout()
    model = args.model or ensure_trained(Settings.from_env())
    results, latencies = asyncio.run(parse_all(model, [e["text"] for e in examples]))

    gold = [e["intent"] for e in examples]
    pred = [r["intent"]["name"] for r in results]
    labels = sorted(set(gold))
    accuracy = accuracy_score(gold, pred)
    macro_f1 = f1_score(gold, pred, labels=labels, average="macro", zero_division=0)
    e_p, e_r, e_f1 = entity_scores(
        [entity_pairs(e.get("entities")) for e in examples],
        [entity_pairs(r.get("entities")) for r in results],
    )

    print(classification_report(gold, pred, labels=labels, zero_division=0, digits=3))
    if args.show_errors:
        for example, got in zip(examples, results):
            if example["intent"] != got["intent"]["name"]:
                print(f"  {example['intent']:>15} -> {got['intent']['name']:<15} {example['text'][:60]}")
            missing = entity_pairs(example.get("entities")) - entity_pairs(got.get("entities"))
            extra = entity_pairs(got.get("entities")) - entity_pairs(example.get("entities"))
            if missing or extra:
                print(f"  entities missing={sorted(missing)} extra={sorted(extra)} {example['text'][:50]}")
    print(f"held-out messages     {len(examples)}")
    print(f"intent accuracy       {accuracy:.3f}")
    print(f"intent macro-F1       {macro_f1:.3f}")
    print(f"entity P / R / F1     {e_p:.3f} / {e_r:.3f} / {e_f1:.3f}")
    print(f"parse latency ms      p50 {statistics.median(latencies):.1f}  p95 {percentile(latencies, 0.95):.1f}")
    if args.min_intent_f1 is not None and macro_f1 < args.min_intent_f1:
        print(f"FAIL: intent macro-F1 {macro_f1:.3f} < {args.min_intent_f1:.2f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
