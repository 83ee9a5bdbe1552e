"""The web chat's home: 「猜你想问」 ranked by how often each knowledge entry was answered.

Answers are counted where they already are: every knowledge-base answer appends a risk event of
kind rights_question, reason = the entry id, to the shared Redis stream (bot.risk.stream), so the
count is the same whichever replica answered. The newest SCAN_EVENTS events are read; with none,
the curated list of knowledge/home.yml is shown. `rank_topics` is pure.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from functools import lru_cache
from typing import Any, Dict, Iterable, List, Mapping, Sequence

import yaml

from bot.knowledge.answering import intent_for
from bot.knowledge.kb import Entry, load_entries
from bot.paths import ROOT
from bot.risk.events import RIGHTS_QUESTION

HOME_FILE = ROOT / "knowledge" / "home.yml"
SCAN_EVENTS = 5000  # the newest events read for the ranking
CACHE_S = 60.0  # the ranking changes slowly; one stream read a minute per replica
POPULAR_LIMIT = 5


@lru_cache(maxsize=1)
def entries_by_id() -> Dict[str, Entry]:
    return {entry.id: entry for entry in load_entries()}


def entry_titles() -> Dict[str, str]:
    """Knowledge entry id -> title, for bot.transcript.turns (tapped questions read as titles)."""
    return {entry_id: entry.title for entry_id, entry in entries_by_id().items()}


@lru_cache(maxsize=1)
def curated() -> Dict[str, List[str]]:
    document = yaml.safe_load(HOME_FILE.read_text(encoding="utf-8")) or {}
    return {key: [str(i) for i in document.get(key) or []] for key in ("popular", "rights")}


def question(entry: Entry) -> Dict[str, str]:
    """A tappable question: the entry's title, sending its intent with the entry as entity."""
    entity = json.dumps({"kb_entry": entry.id}, ensure_ascii=False)
    return {"title": entry.title, "payload": f"/{intent_for(entry)}{entity}"}


def rank_topics(counts: Mapping[str, int], entries: Mapping[str, Entry], fallback: Sequence[str],
                limit: int = POPULAR_LIMIT) -> List[Dict[str, str]]:
    """The most answered entries (ties by id, for a stable menu), topped up from `fallback`.
    Ids no longer in the knowledge base are skipped."""
    ranked = sorted((i for i in counts if i in entries and counts[i] > 0), key=lambda i: (-counts[i], i))
    chosen: List[str] = []
    for entry_id in [*ranked, *fallback]:
        if entry_id in entries and entry_id not in chosen:
            chosen.append(entry_id)
    return [question(entries[i]) for i in chosen[:limit]]


def count_answers(stream_entries: Iterable[Any]) -> Counter:
    """Answers per knowledge entry among XRANGE results [(id, fields), …] (bytes or str)."""
    counts: Counter = Counter()
    for _id, fields in stream_entries:
        decoded = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                   for k, v in fields.items()}
        if decoded.get("kind") == RIGHTS_QUESTION and decoded.get("reason"):
            counts[decoded["reason"]] += 1
    return counts


class HomeMenu:
    """GET /chat/home's body, from the risk stream at `stream_key`, cached CACHE_S."""

    def __init__(self, redis, stream_key: str) -> None:
        self.redis, self.stream_key = redis, stream_key
        self._cached: Dict[str, Any] = {}
        self._until = 0.0

    @staticmethod
    def fallback() -> Dict[str, Any]:
        """The curated menu, when the counts cannot be read."""
        entries = entries_by_id()
        return {"popular": rank_topics({}, entries, curated()["popular"]),
                "rights": [question(entries[i]) for i in curated()["rights"] if i in entries]}

    async def body(self) -> Dict[str, Any]:
        if time.monotonic() < self._until:
            return self._cached
        newest = await self.redis.xrevrange(self.stream_key, count=SCAN_EVENTS)
        self._cached = {**self.fallback(),
                        "popular": rank_topics(count_answers(newest), entries_by_id(), curated()["popular"])}
        self._until = time.monotonic() + CACHE_S
        return self._cached
