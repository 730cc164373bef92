"""Prometheus counters of the memory component: every fallback and every dropped write is counted."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["EMBEDDER_FALLBACKS", "EMBEDDING_FAILURES", "RECALL_SECONDS", "REMEMBER_SECONDS"]

EMBEDDER_FALLBACKS = Counter(
    "patchbay_memory_embedder_fallbacks_total",
    "times the configured embedder could not load and hashing was used",
    ["reason"],
)
EMBEDDING_FAILURES = Counter(
    "patchbay_memory_embedding_failures_total",
    "turns stored without a vector (lexical and recency retrieval only) or queries answered without one",
    ["stage"],
)
RECALL_SECONDS = Histogram(
    "patchbay_memory_recall_seconds",
    "latency of one base recall",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
REMEMBER_SECONDS = Histogram(
    "patchbay_memory_remember_seconds",
    "latency of remember() on the reply path",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1),
)
