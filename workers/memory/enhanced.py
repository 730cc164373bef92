"""``MultiQueryMemory``: the seed's multi-query recall as a layer over any ``Memory``.

From one message it derives several weighted queries (the message itself, its entities, its topic
terms, the message in the context of the recent turns, entity pairs), keeps those weighing at least
``min_query_weight``, runs the ``max_queries_per_search`` heaviest against the layer below (asking
each for ``fetch_factor`` times the limit), and fuses the result lists: weighted scoring as in the
seed (relevance x weight, a bonus each time a memory is found again, a boost for entity matches) or
reciprocal-rank fusion. Duplicates are merged and results under a relative score floor are cut.

Failures are not caught here: an exception from the layer below or from this code propagates, so
the patch framework can fall back to the base recall and count it (the seed's silent ``except`` that
turned errors into an empty memory list is exactly what this avoids).
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Literal

from workers.components import Memory, Recalled, RecallQuery, Turn
from workers.memory.text import content_words, entities

__all__ = ["MultiQueryConfig", "MultiQueryMemory", "WeightedQuery", "derive_queries"]


@dataclass(slots=True)
class MultiQueryConfig:
    max_queries_per_search: int = 3
    min_query_weight: float = 0.4
    combine_results: bool = True  # False: only the heaviest query's results are used
    fusion: Literal["weighted", "rrf"] = "weighted"
    fetch_factor: int = 2  # each query asks the layer below for fetch_factor x limit memories
    refind_bonus: float = 0.5  # weighted fusion: + refind_bonus x weight per further query that found a memory
    entity_boost: float = 0.1  # weighted fusion: + per query entity the memory mentions (capped at 3)
    rrf_k: int = 60
    score_floor: float = 0.2  # drop memories scoring under this share of the best one (noise cut)
    recent_turns: int = 2  # turns of the conversation used by the "context" query
    query_weights: dict[str, float] = field(
        default_factory=lambda: {
            # Tuned on LoCoMo dev (docs/memory.md): the whole message is the strongest single query with
            # a sentence embedder, so derived queries only support it.
            "message": 1.0,
            "entities": 0.5,
            "topics": 0.45,
            "context": 0.6,
            "entity_pairs": 0.4,
        }
    )


@dataclass(frozen=True, slots=True)
class WeightedQuery:
    kind: str
    text: str
    weight: float


def derive_queries(message: str, recent: list[Turn], config: MultiQueryConfig) -> list[WeightedQuery]:
    """The weighted queries for ``message``, heaviest first, distinct, within the configured bounds."""
    weights = config.query_weights
    names = entities(message)
    topics = [w for w in dict.fromkeys(content_words(message)) if w not in names]
    candidates: list[WeightedQuery] = [WeightedQuery("message", message, weights.get("message", 0.0))]
    if names:
        candidates.append(WeightedQuery("entities", " ".join(names), weights.get("entities", 0.0)))
    if topics:
        candidates.append(WeightedQuery("topics", " ".join(topics), weights.get("topics", 0.0)))
    context = [t.text for t in recent[-config.recent_turns :] if t.text.strip()] if config.recent_turns else []
    if context:
        candidates.append(WeightedQuery("context", " ".join([*context, message]), weights.get("context", 0.0)))
    if len(names) >= 2:
        pairs = " ".join(f"{a} {b}" for a, b in itertools.combinations(names[:4], 2))
        candidates.append(WeightedQuery("entity_pairs", pairs, weights.get("entity_pairs", 0.0)))
    chosen: list[WeightedQuery] = []
    seen_texts: set[str] = set()
    for q in sorted(candidates, key=lambda q: -q.weight):
        key = " ".join(content_words(q.text)) or q.text.strip().lower()
        if q.weight < config.min_query_weight or not q.text.strip() or key in seen_texts:
            continue
        seen_texts.add(key)
        chosen.append(q)
        if len(chosen) >= config.max_queries_per_search:
            break
    return chosen


def _identity(turn: Turn) -> tuple[str, str, str]:
    # The same stored turn found by two queries, whatever score each gave it.
    return turn.conversation_key, turn.message_id or turn.timestamp.isoformat(), turn.text


class MultiQueryMemory:
    """Implements ``workers.components.Memory``; only ``recall`` differs from the layer below."""

    def __init__(self, below: Memory, config: MultiQueryConfig | None = None) -> None:
        self.below = below
        self.config = config or MultiQueryConfig()

    async def remember(self, turn: Turn) -> None:
        await self.below.remember(turn)

    async def history(self, conversation_key: str, limit: int) -> list[Turn]:
        return await self.below.history(conversation_key, limit)

    async def forget_user(self, user_id: str) -> int:
        return await self.below.forget_user(user_id)

    async def recall(self, query: RecallQuery) -> list[Recalled]:
        config = self.config
        queries = derive_queries(query.text, query.recent, config)
        if not queries:
            return await self.below.recall(query)
        if not config.combine_results:
            queries = queries[:1]
        fetch = max(query.limit * config.fetch_factor, query.limit)
        results = await asyncio.gather(
            *(
                self.below.recall(
                    RecallQuery(
                        text=q.text,
                        conversation_key=query.conversation_key,
                        user_id=query.user_id,
                        scope=query.scope,
                        bot_id=query.bot_id,
                        platform=query.platform,
                        limit=fetch,
                        recent=query.recent,
                    )
                )
                for q in queries
            )
        )
        if config.fusion == "rrf":
            fused = self._rrf(queries, results)
        else:
            fused = self._weighted(queries, results, entities(query.text))
        ranked = sorted(fused.values(), key=lambda r: -r.score)
        if not ranked:
            return []
        floor = ranked[0].score * config.score_floor
        return [r for r in ranked if r.score >= floor][: query.limit]

    def _weighted(
        self, queries: list[WeightedQuery], results: list[list[Recalled]], names: list[str]
    ) -> dict[tuple[str, str, str], Recalled]:
        fused: dict[tuple[str, str, str], Recalled] = {}
        for q, hits in zip(queries, results, strict=True):
            best = max((h.score for h in hits), default=0.0) or 1.0
            for hit in hits:
                key = _identity(hit.turn)
                score = hit.score / best * q.weight
                if key in fused:
                    previous = fused[key]
                    fused[key] = Recalled(
                        previous.turn, max(previous.score, score) + self.config.refind_bonus * q.weight
                    )
                else:
                    fused[key] = Recalled(hit.turn, score)
        if names and self.config.entity_boost:
            for key, hit in fused.items():
                text = hit.turn.text.lower()
                matches = sum(1 for name in names if name in text)
                if matches:
                    fused[key] = Recalled(hit.turn, hit.score + self.config.entity_boost * min(matches, 3))
        return fused

    def _rrf(self, queries: list[WeightedQuery], results: list[list[Recalled]]) -> dict[tuple[str, str, str], Recalled]:
        fused: dict[tuple[str, str, str], Recalled] = {}
        for q, hits in zip(queries, results, strict=True):
            for rank, hit in enumerate(hits, start=1):
                key = _identity(hit.turn)
                gain = q.weight / (self.config.rrf_k + rank)
                previous = fused.get(key)
                fused[key] = Recalled(hit.turn, gain + (previous.score if previous else 0.0))
        return fused
