"""`python -m bot.knowledge check`: validate the knowledge base and print a summary."""

from __future__ import annotations

import sys
from collections import Counter

from bot.knowledge.kb import KnowledgeBaseError, load_entries


def main(argv: list) -> int:
    if argv[:1] != ["check"]:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        entries = load_entries()
    except KnowledgeBaseError as error:
        print(f"INVALID: {error}", file=sys.stderr)
        return 1
    by_kind = Counter(e.kind for e in entries)
    print(f"ok: {by_kind['rights']} rights entries, {by_kind['policy']} store-policy entries")
    for topic, count in sorted(Counter(e.topic for e in entries).items()):
        print(f"  {topic:<24} {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
