"""Ranking knowledge-base entries for a shopper's question. Pure Python: no Rasa imports.

Each entry is indexed through its title and paraphrased questions (one short document each)
and through all its text together. Tokens come from jieba with the project dictionary, folded
onto canonical synonyms; CJK character bigrams add robustness to segmentation and typos.
An entry's score is its best paraphrase match plus a share of its whole-entry match (BM25).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple

import yaml
import zhconv

from bot.knowledge.kb import Entry
from bot.nlu.vocabulary import load_vocabulary, segment, synonym_table
from bot.paths import KNOWLEDGE_DIR

RETRIEVAL_VOCABULARY = KNOWLEDGE_DIR / "retrieval.yml"
K1, B = 1.2, 0.4
WHOLE_ENTRY_WEIGHT = 2.0
BIGRAM_WEIGHT = 0.3
UNKNOWN_WORD_WEIGHT = 0.5
_CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class Hit:
    entry: Entry
    score: float
    confidence: float  # share of the question's informative weight that this entry explains
    adds: float = 0.0  # share it explains that the best hit does not (a second topic)


class Analyzer:
    """Text -> folded terms: words (synonyms folded, stopwords dropped) and CJK bigrams."""

    def __init__(self, path: Path = RETRIEVAL_VOCABULARY) -> None:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        self.fold: Dict[str, str] = {}
        for values in synonym_table(load_vocabulary()).values():
            self.fold.update(values)
        for group in data["synonyms"]:
            for word in group:
                self.fold[str(word).lower()] = str(group[0])
        self.stopwords = {str(w) for w in data["stopwords"]}

    def _tokens(self, text: str) -> List[Tuple[str, str]]:
        """(raw word, folded term) pairs, stopwords and punctuation dropped; 繁體 read as 简体."""
        text = zhconv.convert(unicodedata.normalize("NFKC", text).lower(), "zh-cn")
        pairs = []
        for word, _start, _end in segment(text):
            if not word.strip() or not any(ch.isalnum() for ch in word) or word in self.stopwords:
                continue
            pairs.append((word, self.fold.get(word, word)))
        return pairs

    def words(self, text: str) -> List[str]:
        return [term for _word, term in self._tokens(text)]

    def terms(self, text: str) -> List[str]:
        """Folded words, plus bigrams of longer words that no synonym covers."""
        terms, bigrams = [], []
        for word, term in self._tokens(text):
            terms.append(term)
            cjk = "".join(ch for ch in word if _CJK.match(ch))
            if term == word and len(cjk) >= 3:
                bigrams.extend("#" + cjk[i : i + 2] for i in range(len(cjk) - 1))
        return terms + bigrams


class _BM25:
    def __init__(self, documents: Sequence[List[str]]) -> None:
        self.docs = [Counter(d) for d in documents]
        self.lengths = [len(d) for d in documents]
        self.avg = (sum(self.lengths) / len(self.lengths)) if documents else 1.0
        df = Counter(term for d in self.docs for term in d)
        n = len(documents)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        self.postings: Dict[str, List[int]] = defaultdict(list)
        for i, doc in enumerate(self.docs):
            for term in doc:
                self.postings[term].append(i)

    def scores(self, query: Counter) -> Dict[int, float]:
        found: Dict[int, float] = defaultdict(float)
        for term, q_count in query.items():
            idf = self.idf.get(term)
            if idf is None:
                continue
            weight = idf * (BIGRAM_WEIGHT if term.startswith("#") else 1.0)
            for i in self.postings[term]:
                tf = self.docs[i][term]
                norm = tf * (K1 + 1) / (tf + K1 * (1 - B + B * self.lengths[i] / self.avg))
                found[i] += weight * norm
        return found


class KnowledgeIndex:
    """Built once at start-up; `search` is then a few dictionary look-ups per query term."""

    def __init__(self, entries: Iterable[Entry], analyzer: Analyzer = None) -> None:
        self.analyzer = analyzer or Analyzer()
        self.entries: List[Entry] = list(entries)
        self.by_id = {e.id: e for e in self.entries}
        paraphrases: List[List[str]] = []
        self._owner: List[int] = []
        for n, entry in enumerate(self.entries):
            for text in (entry.title, *entry.questions):
                paraphrases.append(self.analyzer.terms(text))
                self._owner.append(n)
        self._paraphrases = _BM25(paraphrases)
        self._whole = _BM25(
            [self.analyzer.terms(" ".join((e.title, *e.questions, e.answer))) for e in self.entries]
        )
        # Words the knowledge base never uses (a story's details, another field's terms) count
        # for less than its own vocabulary: they dilute confidence without dominating it.
        idfs = sorted(self._whole.idf.values()) or [1.0]
        self._unknown_weight = UNKNOWN_WORD_WEIGHT * idfs[len(idfs) // 2]

    def search(self, question: str, k: int = 3) -> List[Hit]:
        terms = self.analyzer.terms(question)
        if not terms:
            return []
        query = Counter(terms)
        best: Dict[int, float] = defaultdict(float)
        for doc, score in self._paraphrases.scores(query).items():
            owner = self._owner[doc]
            best[owner] = max(best[owner], score)
        for n, score in self._whole.scores(query).items():
            best[n] += WHOLE_ENTRY_WEIGHT * score
        ranked = sorted(best.items(), key=lambda item: -item[1])[:k]
        if not ranked:
            return []
        top_words = self._matched(query, ranked[0][0])
        return [
            Hit(
                self.entries[n],
                score,
                self._share(query, self._matched(query, n)),
                self._share(query, self._matched(query, n) - top_words) if rank else 0.0,
            )
            for rank, (n, score) in enumerate(ranked)
        ]

    def _matched(self, query: Counter, n: int) -> set:
        doc = self._whole.docs[n]
        return {t for t in query if not t.startswith("#") and t in doc}

    def _share(self, query: Counter, words: set) -> float:
        """idf-weighted share of the question's words that `words` cover."""
        known = [t for t in query if not t.startswith("#")]
        total = sum(self._whole.idf.get(t, self._unknown_weight) for t in known)
        matched = sum(self._whole.idf[t] for t in words)
        return round(matched / total, 4) if total else 0.0


@lru_cache(maxsize=1)
def default_index() -> KnowledgeIndex:
    from bot.knowledge.kb import load_entries

    return KnowledgeIndex(load_entries())
