"""Chinese segmentation and domain-entity matching, with no Rasa imports.

The vocabulary in knowledge/entities.yml is the single source for the jieba user dictionary
additions, the spaCy EntityRuler patterns and the synonym -> canonical value mapping.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List

import yaml

from bot.paths import ENTITY_VOCABULARY, JIEBA_USER_DICT

logger = logging.getLogger(__name__)

Vocabulary = Dict[str, Dict[str, List[str]]]

_jieba_lock = threading.Lock()
_jieba_ready = False


class VocabularyError(ValueError):
    """The entity vocabulary file is malformed."""


@dataclass(frozen=True)
class DomainEntity:
    entity: str
    value: str
    start: int
    end: int
    text: str


def load_vocabulary(path: Path = ENTITY_VOCABULARY) -> Vocabulary:
    """Reads entity type -> canonical value -> surface forms, validating the shape."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise VocabularyError(f"{path}: top level must be a mapping of entity types")
    vocabulary: Vocabulary = {}
    for entity, values in raw.items():
        if not isinstance(values, dict):
            raise VocabularyError(f"{path}: '{entity}' must map canonical values to lists")
        vocabulary[entity] = {}
        for canonical, surfaces in values.items():
            if not isinstance(surfaces, list) or not all(isinstance(s, (str, int)) for s in surfaces):
                raise VocabularyError(f"{path}: '{entity}.{canonical}' must be a list of strings")
            forms = [str(canonical)] + [str(s) for s in surfaces]
            vocabulary[entity][str(canonical)] = list(dict.fromkeys(forms))
    return vocabulary


def synonym_table(vocabulary: Vocabulary) -> Dict[str, Dict[str, str]]:
    """entity type -> lower-cased surface form -> canonical value."""
    return {
        entity: {form.lower(): canonical for canonical, forms in values.items() for form in forms}
        for entity, values in vocabulary.items()
    }


def ensure_jieba() -> None:
    """Loads the project dictionary into jieba's global tokenizer once per process.

    spaCy's Chinese jieba segmenter and our Rasa tokenizer both use that global tokenizer.
    """
    global _jieba_ready
    with _jieba_lock:
        if _jieba_ready:
            return
        import jieba

        jieba.setLogLevel(logging.WARNING)
        jieba.load_userdict(str(JIEBA_USER_DICT))
        for values in load_vocabulary().values():
            for forms in values.values():
                for form in forms:
                    # Latin forms stay as jieba's own tokens; only CJK/digit forms need the hint.
                    if not form.isascii() or form.isdigit():
                        jieba.add_word(form, freq=50000)
        _jieba_ready = True


def segment(text: str) -> List[tuple]:
    """(word, start, end) triples from jieba with the project dictionary."""
    ensure_jieba()
    import jieba

    return list(jieba.tokenize(text))


class EntityMatcher:
    """spaCy blank 'zh' pipeline (jieba segmenter) with an EntityRuler built from the vocabulary."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        ensure_jieba()
        import spacy

        self._nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "jieba"}}})
        ruler = self._nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER"})
        ruler.add_patterns(
            [
                {"label": entity, "pattern": form, "id": canonical}
                for entity, values in vocabulary.items()
                for canonical, forms in values.items()
                for form in forms
            ]
        )
        self._lock = threading.Lock()

    def match(self, text: str) -> List[DomainEntity]:
        if not text:
            return []
        with self._lock:  # spaCy pipelines are not guaranteed thread-safe
            doc = self._nlp(text)
        return [
            DomainEntity(ent.label_, ent.ent_id_ or ent.text, ent.start_char, ent.end_char, ent.text)
            for ent in doc.ents
        ]


@lru_cache(maxsize=1)
def default_matcher() -> EntityMatcher:
    return EntityMatcher(load_vocabulary())
