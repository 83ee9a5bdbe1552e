"""Knowledge-base entries: loaded from YAML, validated field by field, citations resolved."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import yaml

from bot.knowledge.laws import CHINESE_DIGITS, Statute, chinese_to_int, default_statutes
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


# --- Numbers in answers must come from the cited law -----------------------------------------
# An answer that says 三倍, 500元, 七日, 7天, 十五日 or 20% must cite at least one article that
# contains the same number with the same unit: the figures a shopper relies on are exactly the
# part of an answer most likely to be misremembered.

_CN_NUMERAL = "零〇一二两三四五六七八九十百千万"
_UNIT_OF = {"倍": "倍", "元": "元", "日": "日", "天": "日", "%": "%", "％": "%"}
_NUMBER = re.compile(
    rf"百分之(?P<pct>\d+(?:\.\d+)?|[{_CN_NUMERAL}]+)"
    rf"|(?P<num>\d+(?:\.\d+)?|[{_CN_NUMERAL}]+)\s*(?P<unit>倍|元|日|天|%|％)"
)
# A numeral right after these is not a number the law fixes: 几十元, 数十倍, 3月5日, 第一日.
_NOT_A_QUANTITY_AFTER = set("几数多月第")


def numeral_value(text: str) -> float:
    """'500' -> 500, '五百' -> 500, '一千' -> 1000, '十五' -> 15, '两' -> 2, '五十万' -> 500000."""
    text = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    if not text:
        raise ValueError(f"not a numeral: {text!r}")
    if len(text) > 1 and all(ch in CHINESE_DIGITS for ch in text):  # 二〇二四 read digit by digit
        return float("".join(str(CHINESE_DIGITS[ch]) for ch in text))
    return float(chinese_to_int(text))


def numbers_with_units(text: str) -> Dict[Tuple[float, str], str]:
    """The quantities in `text`, normalised: {(value, unit): first spelling}, 天 -> 日, 百分之N -> N%.

    >>> sorted(numbers_with_units("七日内退货，赔偿三倍，不足500元的按五百元").items())
    [((3.0, '倍'), '三倍'), ((7.0, '日'), '七日'), ((500.0, '元'), '500元')]
    """
    found: Dict[Tuple[float, str], str] = {}
    for match in _NUMBER.finditer(text):
        if match.start() and text[match.start() - 1] in _NOT_A_QUANTITY_AFTER:
            continue
        if match.group("pct") is not None:
            key = (numeral_value(match.group("pct")), "%")
        else:
            key = (numeral_value(match.group("num")), _UNIT_OF[match.group("unit")])
        found.setdefault(key, match.group(0))
    return found


@dataclass(frozen=True)
class NumberProblem:
    source: Path
    entry_id: str
    number: str  # as written in the answer

    def __str__(self) -> str:
        return f"{self.source}: id={self.entry_id}: the answer says {self.number!r} but no cited article contains that number"


def check_numbers(entries: Iterable[Entry]) -> List[NumberProblem]:
    """Every number with a unit (倍, 元, 日/天, %) in a rights entry's answer must appear, with the
    same unit, in at least one cited article. Store-policy entries (no citations) are exempt."""
    problems: List[NumberProblem] = []
    for entry in entries:
        if entry.kind != "rights":
            continue
        cited = set()
        for citation in entry.citations:
            cited.update(numbers_with_units(citation.text))
        for key, spelling in numbers_with_units(entry.answer).items():
            if key not in cited:
                problems.append(NumberProblem(entry.source, entry.id, spelling))
    return problems
