"""Knowledge-base entries: loaded from YAML, validated field by field, citations resolved."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import yaml

from bot.knowledge.laws import Statute, default_statutes
from bot.paths import KNOWLEDGE_DIR

KB_DIRS = (KNOWLEDGE_DIR / "kb", KNOWLEDGE_DIR / "policy")
NEXT_ACTIONS = ("request_return", "order_status", "complain", "request_human")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
MIN_QUESTIONS = 3


class KnowledgeBaseError(ValueError):
    """A knowledge-base file is invalid; the message names the file, the entry and the field."""


@dataclass(frozen=True)
class Citation:
    law: str
    article: int
    text: str  # the whole article, verbatim from the statute file
    line: str  # 《中华人民共和国消费者权益保护法》第二十五条
    quote: Optional[str] = None

    def payload(self) -> Dict[str, Any]:
        return {"law": self.law, "article": self.article, "text": self.text}


@dataclass(frozen=True)
class Entry:
    id: str
    kind: str  # "rights" (statute-backed) or "policy" (the store's own rules)
    topic: str
    title: str
    questions: Tuple[str, ...]
    answer: str
    citations: Tuple[Citation, ...]
    next_actions: Tuple[str, ...]
    reviewed: dt.date
    source: Path

    @property
    def citation_line(self) -> str:
        return "、".join(c.line for c in self.citations)


class _Checker:
    def __init__(self, path: Path, index: int, raw: Mapping[str, Any]) -> None:
        self.where = f"{path}: entries[{index}]" + (f" (id={raw.get('id')})" if isinstance(raw, Mapping) and raw.get("id") else "")

    def fail(self, field: str, problem: str) -> KnowledgeBaseError:
        return KnowledgeBaseError(f"{self.where}: field '{field}' {problem}")

    def text(self, raw: Mapping[str, Any], field: str) -> str:
        value = raw.get(field)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field, "must be a non-empty string")
        return value.strip()


def cite(law: str, article: int, quote: Optional[str] = None, statutes: Optional[Mapping[str, Statute]] = None) -> Citation:
    """A citation of one article, its text taken verbatim from the statute file."""
    statute = (statutes if statutes is not None else default_statutes())[law]
    return Citation(law, article, statute.articles[article], statute.citation_line(article), quote)


def _citations(check: _Checker, raw: Any, statutes: Mapping[str, Statute]) -> Tuple[Citation, ...]:
    if not isinstance(raw, list) or not raw:
        raise check.fail("citations", "must be a non-empty list (policy entries set kind: policy)")
    found = []
    for i, item in enumerate(raw):
        field = f"citations[{i}]"
        if not isinstance(item, Mapping):
            raise check.fail(field, "must be a mapping with law and article")
        statute = statutes.get(item.get("law"))
        if statute is None:
            raise check.fail(f"{field}.law", f"names no statute in knowledge/laws: {item.get('law')!r}")
        article = item.get("article")
        if not isinstance(article, int) or article not in statute.articles:
            raise check.fail(f"{field}.article", f"{article!r} is not an article of {statute.title}")
        text = statute.articles[article]
        quote = item.get("quote")
        if quote is not None and (not isinstance(quote, str) or quote not in text):
            raise check.fail(f"{field}.quote", f"is not verbatim text of {statute.citation_line(article)}")
        found.append(cite(statute.title, article, quote, statutes))
    return tuple(found)


def parse_entry(raw: Any, path: Path, index: int, statutes: Mapping[str, Statute]) -> Entry:
    check = _Checker(path, index, raw)
    if not isinstance(raw, Mapping):
        raise KnowledgeBaseError(f"{check.where}: must be a mapping")
    entry_id = check.text(raw, "id")
    if not _ID.match(entry_id):
        raise check.fail("id", "must be snake_case")
    kind = raw.get("kind", "rights")
    if kind not in ("rights", "policy"):
        raise check.fail("kind", "must be 'rights' or 'policy'")
    questions = raw.get("questions")
    if not isinstance(questions, list) or len(questions) < MIN_QUESTIONS or not all(
        isinstance(q, str) and q.strip() for q in questions
    ):
        raise check.fail("questions", f"must list at least {MIN_QUESTIONS} non-empty paraphrases")
    if kind == "policy":
        if raw.get("citations"):
            raise check.fail("citations", "must be absent: store policy is not law")
        citations: Tuple[Citation, ...] = ()
    else:
        citations = _citations(check, raw.get("citations"), statutes)
    next_actions = raw.get("next_actions") or []
    if not isinstance(next_actions, list) or any(a not in NEXT_ACTIONS for a in next_actions):
        raise check.fail("next_actions", f"may only contain {', '.join(NEXT_ACTIONS)}")
    reviewed = raw.get("reviewed")
    if not isinstance(reviewed, dt.date):
        raise check.fail("reviewed", "must be a date (YYYY-MM-DD)")
    return Entry(
        id=entry_id,
        kind=kind,
        topic=check.text(raw, "topic"),
        title=check.text(raw, "title"),
        questions=tuple(q.strip() for q in questions),
        answer=check.text(raw, "answer"),
        citations=citations,
        next_actions=tuple(next_actions),
        reviewed=reviewed,
        source=path,
    )


def load_entries(
    directories: Iterable[Path] = KB_DIRS, statutes: Optional[Mapping[str, Statute]] = None
) -> List[Entry]:
    """Every entry of every *.yml file in `directories`, validated; ids must be unique."""
    statutes = statutes if statutes is not None else default_statutes()
    entries: List[Entry] = []
    seen: Dict[str, Path] = {}
    for directory in directories:
        for path in sorted(Path(directory).glob("*.yml")):
            try:
                document = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError as error:
                raise KnowledgeBaseError(f"{path}: not valid YAML: {error}") from error
            if not isinstance(document, Mapping) or not isinstance(document.get("entries"), list):
                raise KnowledgeBaseError(f"{path}: top level must be a mapping with an 'entries' list")
            for index, raw in enumerate(document["entries"]):
                entry = parse_entry(raw, path, index, statutes)
                if entry.id in seen:
                    raise KnowledgeBaseError(f"{path}: entries[{index}]: field 'id' {entry.id!r} already used in {seen[entry.id]}")
                seen[entry.id] = path
                entries.append(entry)
    return entries
