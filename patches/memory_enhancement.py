"""``memory_enhancement``: multi-query recall with weighted scoring, over any ``Memory``.

The whole message is the **anchor** query: with BM25 plus a sentence embedder below, it is the best
single query there is (measured on LoCoMo, docs/memory.md), so nothing derived from it may push its
strong hits out. The anchor asks the layer below for a wide pool (``fetch_factor`` x the limit: one
embedding, however wide), and the enhancement re-ranks that pool with evidence the single query cannot use:

- **supporting queries** (the message with its recent turns, its entities, its topic terms, entity
  pairs), at most ``max_queries_per_search`` queries in all with weights >= ``min_query_weight``:
  their hits add a bonus proportional to their weight, and hits only they found fill in below;
- **author match**: a memory said by someone the message names ("what did Caroline say...");
- **neighbours**: a turn said within ``neighbour_window_s`` of a strong hit in the same conversation
  is often the rest of the answer (the question's other half, the date, the follow-up);
- duplicates merged (the same turn found twice, or the same words said twice), noise cut.

Failures are not caught here. One in this code falls back, through the framework, to the base
single-query recall, counted and logged; one of the store below (the database is down) propagates
as the store's failure, never charged to this patch. A broad ``except`` that turned errors into an
empty memory list, silently, is what sank the memory layer this design comes from (docs/decisions.md).
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, replace
from typing import Literal

from pydantic import Field

from patches.runtime import make_apply_function
from patches.spec import PatchConfig, PatchSpec
from workers.components import ComponentKind, Memory, Recalled, RecallQuery, Turn
from workers.memory.text import content_words, entities, normalised_text

__all__ = [
    "SPEC",
    "MemoryEnhancementConfig",
    "MultiQueryMemory",
    "WeightedQuery",
    "apply_memory_enhancement_patch",
    "derive_queries",
    "fuse",
]

ANCHOR = "message"


def _default_query_weights() -> dict[str, float]:
    return {
        ANCHOR: 1.0,
        # Measured on LoCoMo dev: entity-, topic- and pair-only queries add nothing over the anchor's
        # pool (and cost an embedding each), so by default they weigh under min_query_weight and
        # only the recent-turns query supports the anchor, for follow-ups such as "and what did she say?".
        "context": 0.6,
        "entities": 0.35,
        "topics": 0.35,
        "entity_pairs": 0.3,
    }


class MemoryEnhancementConfig(PatchConfig, patch="memory_enhancement", default_enabled=True):
    max_queries_per_search: int = Field(default=3, ge=1)
    min_query_weight: float = Field(default=0.4, ge=0.0, le=1.0)
    combine_results: bool = True  # False: the anchor's pool alone is re-ranked, no supporting queries run
    fusion: Literal["weighted", "rrf"] = "weighted"
    # Re-ranking of the anchor's pool; defaults chosen on LoCoMo dev (docs/memory.md).
    fetch_factor: int = Field(default=5, ge=1)  # the anchor (and each supporting query) asks for fetch_factor x limit
    support_weight: float = 0.2  # weighted fusion: bonus = support_weight x query weight x normalised relevance
    author_boost: float = 0.2  # + when the memory's author is named in the message
    neighbour_weight: float = 0.2  # + this share of the best in-pool score said within the window, same conversation
    neighbour_window_s: float = 60.0
    rrf_k: int = 60
    score_floor: float = 0.2  # drop memories scoring under this share of the best one (noise cut)
    recent_turns: int = 2  # turns of the conversation used by the "context" query
    query_weights: dict[str, float] = Field(default_factory=_default_query_weights)
    timeout_s: float | None = 2.0  # its own work (deriving, fusing); the store's searches below are not counted


@dataclass(frozen=True, slots=True)
class WeightedQuery:
    kind: str
    text: str
    weight: float


def derive_queries(message: str, recent: list[Turn], config: MemoryEnhancementConfig) -> list[WeightedQuery]:
    """The anchor (the message itself) first, then the heaviest distinct supporting queries within the bounds."""
    if not message.strip():
        return []
    weights = config.query_weights
    names = entities(message)
    topics = [w for w in dict.fromkeys(content_words(message)) if w not in names]
    candidates: list[WeightedQuery] = []
    context = [t.text for t in recent[-config.recent_turns :] if t.text.strip()] if config.recent_turns else []
    if context:
        candidates.append(WeightedQuery("context", " ".join([*context, message]), weights.get("context", 0.0)))
    if names:
        candidates.append(WeightedQuery("entities", " ".join(names), weights.get("entities", 0.0)))
    if topics:
        candidates.append(WeightedQuery("topics", " ".join(topics), weights.get("topics", 0.0)))
    if len(names) >= 2:
        pairs = " ".join(f"{a} {b}" for a, b in itertools.combinations(names[:4], 2))
        candidates.append(WeightedQuery("entity_pairs", pairs, weights.get("entity_pairs", 0.0)))
    # The anchor is kept whatever its configured weight: dropping the whole message is what sank the
    # multi-query recall this one replaces (docs/memory.md).
    anchor = WeightedQuery(ANCHOR, message, max(weights.get(ANCHOR, 1.0), config.min_query_weight))
    chosen = [anchor]
    seen_texts = {" ".join(content_words(message)) or message.strip().lower()}
    for q in sorted(candidates, key=lambda q: -q.weight):
        if len(chosen) >= config.max_queries_per_search:
            break
        key = " ".join(content_words(q.text)) or q.text.strip().lower()
        if q.weight < config.min_query_weight or not q.text.strip() or key in seen_texts:
            continue
        seen_texts.add(key)
        chosen.append(q)
    return chosen


_Identity = tuple[str, str, str]


def _identity(turn: Turn) -> _Identity:
    # The same stored turn found by two queries, whatever score each gave it.
    return turn.conversation_key, turn.message_id or turn.timestamp.isoformat(), turn.text


def fuse(
    message: str, queries: list[WeightedQuery], results: list[list[Recalled]], config: MemoryEnhancementConfig
) -> list[Recalled]:
    """Rank the memories ``queries`` (anchor first) found, best first, duplicates merged and noise cut (no limit)."""
    pool = _rrf(queries, results, config) if config.fusion == "rrf" else _weighted(queries, results, config)
    pool = _merge_repeated_words(pool)
    if not pool:
        return []
    # Boosts are relative to the best fused score, so they mean the same under either fusion.
    top = max(r.score for r in pool.values()) or 1.0
    relevance = {key: hit.score / top for key, hit in pool.items()}
    names = set(entities(message))
    scored: dict[_Identity, float] = {}
    for key, hit in pool.items():
        score = relevance[key]
        if config.author_boost and hit.turn.author_name and hit.turn.author_name.lower() in names:
            score += config.author_boost
        scored[key] = score
    if config.neighbour_weight:
        neighbour = _best_neighbour(pool, relevance, config.neighbour_window_s)
        scored = {key: score + config.neighbour_weight * neighbour[key] for key, score in scored.items()}
    ranked = sorted(pool, key=lambda key: -scored[key])
    floor = scored[ranked[0]] * config.score_floor
    return [Recalled(pool[key].turn, scored[key]) for key in ranked if scored[key] >= floor]


def _weighted(
    queries: list[WeightedQuery], results: list[list[Recalled]], config: MemoryEnhancementConfig
) -> dict[_Identity, Recalled]:
    """The anchor's relevance, plus a bonus from each supporting query that found the memory too."""
    fused: dict[_Identity, Recalled] = {}
    for q, hits in zip(queries, results, strict=True):
        best = max((h.score for h in hits), default=0.0) or 1.0
        share = q.weight if q.kind == ANCHOR else config.support_weight * q.weight
        for hit in hits:
            key = _identity(hit.turn)
            gain = hit.score / best * share
            previous = fused.get(key)
            fused[key] = Recalled(hit.turn, gain + (previous.score if previous else 0.0))
    return fused


def _rrf(
    queries: list[WeightedQuery], results: list[list[Recalled]], config: MemoryEnhancementConfig
) -> dict[_Identity, Recalled]:
    fused: dict[_Identity, Recalled] = {}
    for q, hits in zip(queries, results, strict=True):
        for rank, hit in enumerate(hits, start=1):
            key = _identity(hit.turn)
            gain = q.weight / (config.rrf_k + rank)
            previous = fused.get(key)
            fused[key] = Recalled(hit.turn, gain + (previous.score if previous else 0.0))
    return fused


def _merge_repeated_words(pool: dict[_Identity, Recalled]) -> dict[_Identity, Recalled]:
    """Keep one of several memories of one conversation saying the same words ("ok!", a pasted link): the best."""
    best: dict[tuple[str, str], _Identity] = {}
    for key, hit in pool.items():
        words = (hit.turn.conversation_key, normalised_text(hit.turn.text))
        kept = best.get(words)
        if kept is None or hit.score > pool[kept].score:
            best[words] = key
    kept_keys = set(best.values())
    return {key: hit for key, hit in pool.items() if key in kept_keys}


def _best_neighbour(
    pool: dict[_Identity, Recalled], relevance: dict[_Identity, float], window_s: float
) -> dict[_Identity, float]:
    """For each memory, the best relevance among the *other* memories of its conversation said within the window."""
    by_conversation: dict[str, list[tuple[float, _Identity]]] = {}
    for key, hit in pool.items():
        by_conversation.setdefault(hit.turn.conversation_key, []).append((hit.turn.timestamp.timestamp(), key))
    neighbour = dict.fromkeys(pool, 0.0)
    for timeline in by_conversation.values():
        timeline.sort()
        start = 0
        for i, (ts, key) in enumerate(timeline):
            while timeline[start][0] < ts - window_s:
                start += 1
            j = start
            while j < len(timeline) and timeline[j][0] <= ts + window_s:
                if j != i:
                    neighbour[key] = max(neighbour[key], relevance[timeline[j][1]])
                j += 1
    return neighbour


class MultiQueryMemory:
    """Implements ``workers.components.Memory``; only ``recall`` differs from the layer below."""

    def __init__(self, below: Memory, config: MemoryEnhancementConfig) -> None:
        self.below = below
        self.config = config

    async def remember(self, turn: Turn) -> None:
        await self.below.remember(turn)

    async def history(self, conversation_key: str, limit: int) -> list[Turn]:
        return await self.below.history(conversation_key, limit)

    async def forget_user(self, user_id: str) -> int:
        return await self.below.forget_user(user_id)

    async def recall(self, query: RecallQuery) -> list[Recalled]:
        config = self.config
        queries = derive_queries(query.text, query.recent, config)
        if not queries or query.limit <= 0:
            return await self.below.recall(query)
        if not config.combine_results:
            queries = queries[:1]
        pool_size = max(query.limit * config.fetch_factor, query.limit)
        results = await asyncio.gather(
            *(self.below.recall(replace(query, text=q.text, limit=pool_size)) for q in queries)
        )
        # A supporting query built from the recent turns finds those very turns again: that is no evidence
        # of relevance, and they are in the prompt's history already.
        recent = {(t.conversation_key, normalised_text(t.text)) for t in query.recent}
        results = [
            hits
            if q.kind == ANCHOR
            else [h for h in hits if (h.turn.conversation_key, normalised_text(h.turn.text)) not in recent]
            for q, hits in zip(queries, results, strict=True)
        ]
        return fuse(query.text, queries, results, config)[: query.limit]


SPEC = PatchSpec(
    name="memory_enhancement",
    kind=ComponentKind.MEMORY,
    interface=Memory,
    config_cls=MemoryEnhancementConfig,
    factory=lambda below, config, deps: MultiQueryMemory(below, config),
    enhances=("recall",),
    description="multi-query recall: the message as anchor, re-ranked by supporting queries, authors, neighbours",
)
apply_memory_enhancement_patch = make_apply_function(SPEC)
