"""Statute texts, parsed from the verbatim copies in knowledge/laws/ (one article per paragraph)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterable

from bot.paths import KNOWLEDGE_DIR

LAWS_DIR = KNOWLEDGE_DIR / "laws"
CHINESE_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}
_ARTICLE = re.compile(r"^第([零〇一二两三四五六七八九十百千]+)条(?:之[一二三四五六七八九十]+)?[ \u3000]")


def chinese_to_int(numeral: str) -> int:
    """二十五 -> 25, 一百四十八 -> 148, 十 -> 10, 五十万 -> 500000."""
    total, section, digit = 0, 0, 0
    for char in numeral:
        if char in CHINESE_DIGITS:
            digit = CHINESE_DIGITS[char]
        elif char in _UNITS:
            section += (digit or 1) * _UNITS[char]
            digit = 0
        elif char == "万":
            total += (section + digit or 1) * 10000
            section, digit = 0, 0
        else:
            raise ValueError(f"not a Chinese numeral: {numeral!r}")
    return total + section + digit


def int_to_chinese(number: int) -> str:
    """25 -> 二十五, 148 -> 一百四十八, 10 -> 十, 105 -> 一百零五."""
    if not 0 < number < 10000:
        raise ValueError(f"article number out of range: {number}")
    digits = "零一二三四五六七八九"
    parts, zero_pending = [], False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d = number // value % 10
        if d == 0:
            zero_pending = bool(parts)
            continue
        if zero_pending:
            parts.append("零")
            zero_pending = False
        parts.append(("" if (d == 1 and unit == "十" and not parts) else digits[d]) + unit)
    return "".join(parts)


@dataclass(frozen=True)
class Statute:
    title: str
    path: Path
    articles: Dict[int, str]

    def article_label(self, number: int) -> str:
        return f"第{int_to_chinese(number)}条"

    def citation_line(self, number: int) -> str:
        return f"《{self.title}》{self.article_label(number)}"


def parse_statute(text: str, path: Path = Path("<text>")) -> Statute:
    """Articles keep every paragraph verbatim, joined by newlines; headings end an article."""
    lines = text.splitlines()
    title = next((l[2:].strip() for l in lines if l.startswith("# ")), None)
    if not title:
        raise ValueError(f"{path}: no '# title' line")
    body = text.split("<!-- INFO END -->", 1)[-1].splitlines()
    articles: Dict[int, list] = {}
    current = None
    for line in body:
        match = _ARTICLE.match(line)
        if match:
            current = chinese_to_int(match.group(1))
            articles[current] = [line.strip()]
        elif line.startswith("#"):
            current = None
        elif current is not None and line.strip():
            articles[current].append(line.strip())
    return Statute(title, path, {n: "\n".join(paragraphs) for n, paragraphs in articles.items()})


def load_statutes(directory: Path = LAWS_DIR) -> Dict[str, Statute]:
    """title -> Statute for every statute file under `directory` (SOURCES.md excluded)."""
    statutes = {}
    for path in sorted(directory.rglob("*.md")):
        if path.name == "SOURCES.md":
            continue
        statute = parse_statute(path.read_text(encoding="utf-8"), path)
        statutes[statute.title] = statute
    return statutes


@lru_cache(maxsize=1)
def default_statutes() -> Dict[str, Statute]:
    return load_statutes()


def article_text(law: str, article: int, statutes: Iterable = None) -> str:
    return (statutes or default_statutes())[law].articles[article]
