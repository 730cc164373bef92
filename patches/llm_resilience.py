"""The seed's ``apply_llm_resilience_patch``: provider fallback chain, retries, shared cooldowns, cache, token budget.

The enhancement is ``workers.llm.resilience.ResilientLLM``; this module only declares it as a patch.
It falls back (through the framework) to the base client when the layer itself breaks; when every
provider is down it answers with its own short apology, which is a valid answer, not a fallback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patches.registry import make_apply_function, register_patch
from patches.spec import PatchConfig, PatchSpec
from workers.components import LLM, ComponentKind, LLMResult

__all__ = ["SPEC", "LLMResilienceConfig", "apply_llm_resilience_patch"]


class LLMResilienceConfig(PatchConfig, patch="llm_resilience", default_enabled=True):
    """Provider chain, retries, cache: ``[llm]`` settings (docs/llm.md); this is only the switch."""


def _build(below: LLM, config: LLMResilienceConfig, deps: Mapping[str, Any]) -> LLM:
    from workers.llm.resilience import build_resilient_llm
    from workers.llm.settings import LLMSettings

    return build_resilient_llm(below, LLMSettings(), deps.get("redis_url"))


def _validate(method: str, result: LLMResult) -> str | None:
    return None if result.text.strip() else "empty answer"


SPEC = register_patch(
    PatchSpec(
        name="llm_resilience",
        kind=ComponentKind.LLM,
        interface=LLM,
        config_cls=LLMResilienceConfig,
        layer_factory=_build,
        enhances=("complete",),
        before=("emotion_tone",),  # the tone line is part of the request the chain (and its cache) sees
        validate=_validate,
        description="provider fallback chain, retry with backoff, shared cooldowns, response cache, token budget",
    )
)
apply_llm_resilience_patch = make_apply_function(SPEC)
