"""The seed's ``apply_memory_enhancement_patch``: multi-query recall with weighted scoring.

The enhancement is ``workers.memory.enhanced.MultiQueryMemory``; it only enhances ``recall``.
Any failure — in query derivation, fusion, or a query against the store — falls back to the base
single-query recall, counted and logged (the seed's wrapper turned such failures into an empty
list, silently, for weeks: NOTES §1).
"""

from __future__ import annotations

from typing import Any, Literal

from patches.registry import make_apply_function, register_patch
from patches.spec import PatchConfig, PatchSpec
from workers.components import ComponentKind, Memory

__all__ = ["SPEC", "MemoryEnhancementConfig", "apply_memory_enhancement_patch"]


class MemoryEnhancementConfig(PatchConfig, patch="memory_enhancement", default_enabled=True):
    max_queries_per_search: int = 3
    min_query_weight: float = 0.4
    combine_results: bool = True
    fusion: Literal["weighted", "rrf"] = "weighted"
    timeout_s: float | None = 2.0  # several queries; past this budget the single base query answers


def _build(below: Memory, config: MemoryEnhancementConfig, deps: dict[str, Any]) -> Memory:
    from workers.memory.enhanced import MultiQueryConfig, MultiQueryMemory

    return MultiQueryMemory(
        below,
        MultiQueryConfig(
            max_queries_per_search=config.max_queries_per_search,
            min_query_weight=config.min_query_weight,
            combine_results=config.combine_results,
            fusion=config.fusion,
        ),
    )


def _prerequisite(config: MemoryEnhancementConfig, deps: dict[str, Any]) -> str | None:
    if config.max_queries_per_search < 1:
        return "max_queries_per_search must be at least 1"
    if not 0 <= config.min_query_weight <= 1:
        return "min_query_weight must be within [0, 1]"
    return None


SPEC = register_patch(
    PatchSpec(
        name="memory_enhancement",
        kind=ComponentKind.MEMORY,
        interface=Memory,
        config_cls=MemoryEnhancementConfig,
        layer_factory=_build,
        enhances=("recall",),
        prerequisite=_prerequisite,
        description="multi-query recall: weighted queries from entities, topics and recent turns, fused and de-noised",
    )
)
apply_memory_enhancement_patch = make_apply_function(SPEC)
