"""Prometheus metrics of the LLM component (default registry; the gateway's /metrics exports them)."""

from __future__ import annotations

from prometheus_client import Counter

__all__ = [
    "ALL_PROVIDERS_DOWN",
    "CACHE_ERRORS",
    "CACHE_REQUESTS",
    "CONTEXT_TRIMMED",
    "COST_UNKNOWN",
    "LLM_CALLS",
    "LLM_COST",
    "LLM_TOKENS",
    "STREAMS_CUT",
]

CACHE_REQUESTS = Counter(
    "patchbay_llm_cache_requests_total", "LLM response cache lookups by outcome", ["result"]
)  # result: hit | miss | bypass
CACHE_ERRORS = Counter(
    "patchbay_llm_cache_errors_total", "LLM cache operations that failed (the call went on uncached)", ["op"]
)
LLM_CALLS = Counter("patchbay_llm_calls_total", "LLM completions by provider and outcome", ["provider", "outcome"])
LLM_TOKENS = Counter("patchbay_llm_tokens_total", "tokens spent, by provider and kind", ["provider", "kind"])
LLM_COST = Counter("patchbay_llm_cost_usd_total", "USD spent on completions, by provider", ["provider"])
COST_UNKNOWN = Counter(
    "patchbay_llm_cost_unknown_total", "completions whose model litellm's cost map does not know (cost 0)", ["model"]
)
ALL_PROVIDERS_DOWN = Counter(
    "patchbay_llm_all_providers_down_total", "requests answered with the apology because every provider failed"
)
CONTEXT_TRIMMED = Counter(
    "patchbay_llm_context_trimmed_total", "requests whose conversation was trimmed to the token budget"
)
STREAMS_CUT = Counter(
    "patchbay_llm_streams_cut_total",
    "streamed answers a provider broke off after its first chunk (ended with what was said and a note)",
    ["provider"],
)
