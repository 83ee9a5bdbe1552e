"""`python -m bot.knowledge check`: validate the knowledge base (fields, citations, verbatim quotes,
and that every number with a unit in a rights answer appears in a cited article) and print a summary.
`python -m bot.knowledge embed`: compute (or find cached) the sentence vectors of the knowledge
base, so that the action server starts without embedding it (`make train` runs this)."""

from __future__ import annotations

import sys
from collections import Counter

from bot.knowledge.kb import KnowledgeBaseError, check_numbers, load_entries


def embed() -> int:
    import time

    from bot.knowledge.embedding import load_embedder
    from bot.knowledge.retrieval import KnowledgeIndex

    embedder = load_embedder()
    if embedder is None:
        print("no sentence embedder: retrieval will use BM25 only")
        return 0
    started = time.monotonic()
    index = KnowledgeIndex(load_entries(), embedder=embedder)
    print(f"knowledge-base vectors ready: {len(index._owner)} passages, {embedder.name}, "
          f"{time.monotonic() - started:.1f} s")
    return 0


def main(argv: list) -> int:
    if argv[:1] == ["embed"]:
        return embed()
    if argv[:1] != ["check"]:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        entries = load_entries()
    except KnowledgeBaseError as error:
        print(f"INVALID: {error}", file=sys.stderr)
        return 1
    problems = check_numbers(entries)
    if problems:
        for problem in problems:
            print(f"INVALID: {problem}", file=sys.stderr)
        print(f"{len(problems)} number(s) in answers not found in the cited articles", file=sys.stderr)
        return 1
    by_kind = Counter(e.kind for e in entries)
    print(f"ok: {by_kind['rights']} rights entries, {by_kind['policy']} store-policy entries")
    for topic, count in sorted(Counter(e.topic for e in entries).items()):
        print(f"  {topic:<24} {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
