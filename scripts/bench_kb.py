"""Knowledge-base retrieval quality and speed on the held-out shopper questions.

Prints hit@1, hit@3 and MRR over questions that have an expected entry, how the answering
decision treats them (answer / clarify / none), how questions with no suitable entry are
handled, the index build time and the query latency. With --min-hit1/--min-hit3, exits 1
below those figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402

from bot.knowledge.answering import decide  # noqa: E402
from bot.knowledge.embedding import load_embedder  # noqa: E402
from bot.knowledge.kb import load_entries  # noqa: E402
from bot.knowledge.retrieval import KnowledgeIndex  # noqa: E402
from bot.paths import ROOT  # noqa: E402

HELDOUT = ROOT / "tests" / "data" / "kb_heldout.yml"


def cross_validate(entries, show_misses: bool) -> int:
    """Index half of each entry's paraphrases, query with the other half, then swap."""
    ranks, kinds = [], Counter()
    for fold in (0, 1):
        kept = [replace(e, questions=e.questions[fold::2]) for e in entries]
        held = [(q, e.id) for e in entries for q in e.questions[1 - fold :: 2]]
        index = KnowledgeIndex(kept)
        for text, expected in held:
            hits = index.search(text, k=3)
            kinds[decide(hits).kind] += 1
            ranked = [h.entry.id for h in hits]
            rank = ranked.index(expected) if expected in ranked else None
            ranks.append(rank)
            if show_misses and rank != 0:
                print(f"  miss rank={rank} want={expected} got={ranked[:2]} | {text[:60]}")
    n = len(ranks)
    print(f"dev paraphrases       {n}")
    print(f"hit@1 {sum(r == 0 for r in ranks) / n:.3f}  hit@3 {sum(r is not None for r in ranks) / n:.3f}  "
          f"MRR {sum(1 / (r + 1) for r in ranks if r is not None) / n:.3f}")
    print("decisions             " + "  ".join(f"{k} {kinds[k] / n:.2f}" for k in ("answer", "clarify", "none")))
    return 0


def evaluate(show_misses: bool = False, dense: bool = True) -> Dict[str, Any]:
    """Retrieval quality and speed on the held-out questions, as figures."""
    questions = yaml.safe_load(HELDOUT.read_text(encoding="utf-8"))["questions"]
    entries = load_entries()
    started = time.perf_counter()
    index = KnowledgeIndex(entries, embedder=load_embedder() if dense else None)
    build_ms = (time.perf_counter() - started) * 1000
    index.search("预热")

    unknown = {i for q in questions for i in q["expected"]} - set(index.by_id)
    if unknown:
        raise ValueError(f"held-out set names unknown entries: {sorted(unknown)}")

    hit1 = hit3 = rr = 0.0
    latencies, positive_kinds, negative_kinds = [], Counter(), Counter()
    answered_right = 0
    positives = [q for q in questions if q["expected"]]
    negatives = [q for q in questions if not q["expected"]]
    for question in questions:
        started = time.perf_counter()
        hits = index.search(question["text"], k=3)
        latencies.append((time.perf_counter() - started) * 1000)
        kind = decide(hits).kind
        if not question["expected"]:
            negative_kinds[kind] += 1
            continue
        positive_kinds[kind] += 1
        ranked = [h.entry.id for h in hits]
        rank = next((i for i, entry_id in enumerate(ranked) if entry_id in question["expected"]), None)
        answered_right += kind == "answer" and rank == 0
        hit1 += rank == 0
        hit3 += rank is not None
        rr += 1 / (rank + 1) if rank is not None else 0
        if show_misses and rank != 0:
            print(f"  miss rank={rank} want={question['expected']} got={ranked} | {question['text'][:70]}")
    n = len(positives)
    latencies.sort()
    return {
        "entries": entries, "positives": n, "negatives": len(negatives),
        "hit1": hit1 / n, "hit3": hit3 / n, "mrr": rr / n,
        "positive_kinds": positive_kinds, "negative_kinds": negative_kinds,
        "answer_precision": answered_right / max(1, positive_kinds["answer"]),
        "build_ms": build_ms, "p50_ms": statistics.median(latencies),
        "p95_ms": latencies[int(0.95 * (len(latencies) - 1))], "index": index,
    }


def realistic(index: KnowledgeIndex) -> Dict[str, Any]:
    """Retrieval alone on the realistic set's rights questions (tests/data/realistic/, written
    from scenario cards, never tuned on): is an acceptable article cited by the top 1 / top 3
    entries? BM25 alone and hybrid, on the same index."""
    from scripts.eval_realistic import load_messages

    questions = [m for m in load_messages() if m.articles]
    figures: Dict[str, Any] = {"n": len(questions)}
    modes = [("bm25", False)] + ([("hybrid", True)] if index.dense else [])
    for mode, dense in modes:
        top1 = top3 = 0
        latencies = []
        for message in questions:
            started = time.perf_counter()
            hits = index.search(message.text, k=3, dense=dense)
            latencies.append((time.perf_counter() - started) * 1000)
            cited = [{(c.law, c.article) for c in h.entry.citations} & message.articles for h in hits]
            top1 += bool(cited and cited[0])
            top3 += any(cited)
        figures[mode] = (top1 / len(questions), top3 / len(questions), statistics.median(latencies))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--min-hit1", type=float)
    parser.add_argument("--min-hit3", type=float)
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument(
        "--dev", action="store_true",
        help="tune without the held-out set: 2-fold cross-validation over the KB's own paraphrases",
    )
    parser.add_argument("--bm25", action="store_true", help="BM25 alone (no sentence embeddings)")
    args = parser.parse_args()
    if args.dev:
        return cross_validate(load_entries(), args.show_misses)
    try:
        figures = evaluate(args.show_misses, dense=not args.bm25)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    entries, n, negatives = figures["entries"], figures["positives"], figures["negatives"]
    positive_kinds, negative_kinds = figures["positive_kinds"], figures["negative_kinds"]
    kinds = Counter(e.kind for e in entries)
    print(f"entries               {len(entries)} ({kinds['rights']} rights, {kinds['policy']} store policy)")
    print(f"held-out questions    {n} with an answer, {negatives} without")
    print(f"hit@1                 {figures['hit1']:.3f}")
    print(f"hit@3                 {figures['hit3']:.3f}")
    print(f"MRR                   {figures['mrr']:.3f}")
    print("decisions (answerable)   " + "  ".join(f"{k} {positive_kinds[k] / n:.2f}" for k in ("answer", "clarify", "none")))
    print(f"answer precision      {figures['answer_precision']:.3f}  "
          "(answered directly and the answer was a right one)")
    if negatives:
        print("decisions (unanswerable) " + "  ".join(f"{k} {negative_kinds[k] / negatives:.2f}" for k in ("answer", "clarify", "none")))
    index = figures["index"]
    print(f"retrieval             {'hybrid: BM25 + ' + index.embedder.name if index.dense else 'BM25 only'}")
    print(f"index build ms        {figures['build_ms']:.0f}")
    print(f"query latency ms      p50 {figures['p50_ms']:.2f}  p95 {figures['p95_ms']:.2f}")
    real = realistic(index)
    print(f"realistic rights questions ({real['n']}, tests/data/realistic): acceptable article cited by")
    for mode in ("bm25", "hybrid"):
        if mode in real:
            top1, top3, p50 = real[mode]
            print(f"  {mode:<8} top 1 {top1:.3f}  top 3 {top3:.3f}  (query p50 {p50:.1f} ms)")

    failed = []
    if args.min_hit1 is not None and figures["hit1"] < args.min_hit1:
        failed.append(f"hit@1 {figures['hit1']:.3f} < {args.min_hit1}")
    if args.min_hit3 is not None and figures["hit3"] < args.min_hit3:
        failed.append(f"hit@3 {figures['hit3']:.3f} < {args.min_hit3}")
    for message in failed:
        print(f"FAIL: {message}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
