"""The seed's ``apply_memory_enhancement_patch``: multi-query recall with weighted scoring.

The enhancement is ``workers.memory.enhanced.MultiQueryMemory``; it only enhances ``recall``.
Any failure — in query derivation, fusion, or a query against the store — falls back to the base
single-query recall, counted and logged (the seed's wrapper turned such failures into an empty
list, silently, for weeks: NOTES §1).
"""

from __future__ import annotations

from collections.abc import Mapping
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
    # Re-ranking of the anchor's (the whole message's) pool; defaults chosen on LoCoMo dev, docs/memory.md.
    fetch_factor: int = 5
    support_weight: float = 0.2
    author_boost: float = 0.2
    neighbour_weight: float = 0.2
    neighbour_window_s: float = 60.0
    timeout_s: float | None = 2.0  # several queries; past this budget the single base query answers


def _build(below: Memory, config: MemoryEnhancementConfig, deps: Mapping[str, Any]) -> Memory:
    from workers.memory.enhanced import MultiQueryConfig, MultiQueryMemory

    return MultiQueryMemory(
        below,
        MultiQueryConfig(
            max_queries_per_search=config.max_queries_per_search,
            min_query_weight=config.min_query_weight,
            combine_results=config.combine_results,
            fusion=config.fusion,
            fetch_factor=config.fetch_factor,
            support_weight=config.support_weight,
            author_boost=config.author_boost,
            neighbour_weight=config.neighbour_weight,
            neighbour_window_s=config.neighbour_window_s,
        ),
    )


def _prerequisite(config: MemoryEnhancementConfig, deps: Mapping[str, Any]) -> str | None:
    if config.max_queries_per_search < 1:
        return "max_queries_per_search must be at least 1"
    if not 0 <= config.min_query_weight <= 1:
        return "min_query_weight must be within [0, 1]"
    if config.fetch_factor < 1:
        return "fetch_factor must be at least 1"
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
        description="multi-query recall: the message as anchor, re-ranked by supporting queries, authors, neighbours",
    )
)
apply_memory_enhancement_patch = make_apply_function(SPEC)
