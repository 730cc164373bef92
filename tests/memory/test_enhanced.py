"""The multi-query layer: its queries, its fusion, its results over the real base memory, and failures that surface."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from patches.memory_enhancement import MemoryEnhancementConfig, MultiQueryMemory, WeightedQuery, derive_queries, fuse
from workers.components import Recalled, RecallQuery, Scope, Turn
from workers.memory import SqlMemory

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _turn(message_id: str, text: str, *, seconds: float, author: str = "alice", conversation: str = "c1") -> Turn:
    return Turn(
        conversation,
        "user",
        text,
        author.lower(),
        author_name=author,
        platform="discord",
        user_id=f"discord:{author.lower()}",
        message_id=message_id,
        timestamp=T0 + timedelta(seconds=seconds),
    )


def test_the_message_is_always_the_first_query_and_the_bounds_hold() -> None:
    config = MemoryEnhancementConfig(query_weights={"message": 1.0, "context": 0.6, "entities": 0.5, "topics": 0.45})
    recent = [Turn("c", "user", "We talked about the Lisbon trip", "alice")]
    message = "Did Caroline and Melanie enjoy the Lisbon pottery workshop?"
    queries = derive_queries(message, recent, config)
    assert queries[0] == WeightedQuery("message", message, 1.0)
    assert len(queries) == config.max_queries_per_search
    assert all(q.weight >= config.min_query_weight for q in queries)
    assert [q.weight for q in queries[1:]] == sorted((q.weight for q in queries[1:]), reverse=True)
    # Even a configuration that weighs the message under the floor keeps it: it is the anchor.
    light = MemoryEnhancementConfig(min_query_weight=0.95, query_weights={"message": 0.1, "entities": 0.9})
    assert [q.kind for q in derive_queries("Did Caroline enjoy it?", recent, light)] == ["message"]
    assert derive_queries("   ", recent, config) == []


def test_default_supporting_queries_are_only_the_recent_turns() -> None:
    config = MemoryEnhancementConfig()
    message = "Did Caroline and Melanie enjoy the Lisbon pottery workshop?"
    assert [q.kind for q in derive_queries(message, [], config)] == ["message"]
    recent = [Turn("c", "user", "We talked about the Lisbon trip", "alice")]
    assert [q.kind for q in derive_queries(message, recent, config)] == ["message", "context"]


def test_supporting_hits_add_to_anchor_hits_but_never_outrank_a_strong_one() -> None:
    config = MemoryEnhancementConfig(neighbour_weight=0.0, author_boost=0.0, score_floor=0.0)
    anchor = WeightedQuery("message", "pottery class", 1.0)
    support = WeightedQuery("context", "kiln bowl pottery class", 0.6)
    strong, weak, only_support = (
        _turn("strong", "pottery class on Monday", seconds=0),
        _turn("weak", "the bowl cracked", seconds=3600),
        _turn("extra", "kiln temperatures", seconds=7200),
    )
    ranked = fuse(
        "pottery class",
        [anchor, support],
        [
            [Recalled(strong, 0.9), Recalled(weak, 0.5)],
            [Recalled(only_support, 0.8), Recalled(weak, 0.8), Recalled(strong, 0.1)],
        ],
        config,
    )
    assert [r.turn.message_id for r in ranked] == ["strong", "weak", "extra"]
    assert len({r.turn.message_id for r in ranked}) == 3  # found twice, listed once
    assert ranked[1].score > 0.5 / 0.9  # the weak anchor hit gained from its support


def test_a_turn_next_to_a_strong_hit_is_lifted_only_within_its_conversation_and_window() -> None:
    config = MemoryEnhancementConfig(author_boost=0.0, neighbour_weight=0.3, neighbour_window_s=60, score_floor=0.0)
    anchor = WeightedQuery("message", "what did Alice name the puppy", 1.0)
    hits = [
        Recalled(_turn("puppy", "I adopted a puppy", seconds=0), 1.0),
        Recalled(_turn("far", "dog food is pricey", seconds=600), 0.55),
        Recalled(_turn("other-chat", "our puppy chews shoes", seconds=30, conversation="c2"), 0.54),
        Recalled(_turn("next", "we called him Biscuit", seconds=30), 0.5),
    ]
    ranked = [r.turn.message_id for r in fuse(anchor.text, [anchor], [hits], config)]
    assert ranked == ["puppy", "next", "far", "other-chat"]


def test_the_author_named_in_the_message_is_preferred_and_repeated_words_are_merged() -> None:
    config = MemoryEnhancementConfig(neighbour_weight=0.0, author_boost=0.2, score_floor=0.0)
    anchor = WeightedQuery("message", "What did Caroline paint?", 1.0)
    hits = [
        Recalled(_turn("m-paint", "I painted a lake", seconds=0, author="Melanie"), 0.8),
        Recalled(_turn("c-paint", "I painted a sunrise", seconds=9000, author="Caroline"), 0.75),
        Recalled(_turn("ok-1", "Ok!", seconds=100), 0.3),
        Recalled(_turn("ok-2", "ok", seconds=5000), 0.31),
    ]
    ranked = [r.turn.message_id for r in fuse(anchor.text, [anchor], [hits], config)]
    assert ranked == ["c-paint", "m-paint", "ok-2"]


async def test_the_enhancement_finds_an_evidence_turn_the_base_ranks_lower(memory: SqlMemory) -> None:
    # LoCoMo's typical multi-hop shape: the question matches the turn that sets the topic, while the
    # answer is the next turn, which shares no word with the question.
    turns = [
        _turn("d2", "Adopting a puppy is a big step, good luck to her.", seconds=30, author="Caroline"),
        _turn("e1", "I finally adopted a puppy last weekend, a tiny beagle.", seconds=86400, author="Caroline"),
        _turn("e2", "We call him Biscuit, he loves chasing leaves.", seconds=86430, author="Caroline"),
        _turn("f1", "Adopting from a shelter was the best decision, the puppy settled in fast.", seconds=172800),
        _turn("f3", "The weather was lovely for the parade.", seconds=259200, author="Melanie"),
    ]
    for turn in turns:
        await memory.remember(turn)
    await memory.flush()
    query = RecallQuery("What is the name of the puppy Caroline adopted?", "c1", "alice", Scope.CHANNEL, limit=3)
    base = [r.turn.message_id for r in await memory.recall(query)]
    enhanced_memory = MultiQueryMemory(memory, MemoryEnhancementConfig())
    enhanced = [r.turn.message_id for r in await enhanced_memory.recall(query)]
    assert "e2" not in base
    assert "e2" in enhanced
    assert "e1" in enhanced
    assert len(enhanced) == len(set(enhanced)) <= 3


@pytest.mark.parametrize("fusion", ["weighted", "rrf"])
async def test_enhanced_recall_passes_the_other_methods_through(memory: SqlMemory, fusion: str) -> None:
    enhanced = MultiQueryMemory(memory, MemoryEnhancementConfig(fusion=fusion))  # type: ignore[arg-type]
    for i, words in enumerate(
        [
            "Caroline joined a pottery class in May",
            "Melanie went camping with her kids",
            "it rained all week",
            "Caroline's pottery bowl cracked in the kiln",
            "we ordered pizza",
        ]
    ):
        await enhanced.remember(_turn(f"m{i}", words, seconds=3600 * i))
    await memory.flush()
    recent = [_turn("r", "we ordered pizza", seconds=3600 * 4)]
    recalled = await enhanced.recall(
        RecallQuery("What did Caroline make in pottery?", "c1", "alice", Scope.CHANNEL, limit=3, recent=recent)
    )
    assert recalled and len(recalled) <= 3
    assert {r.turn.message_id for r in recalled[:2]} == {"m0", "m3"}
    assert len({r.turn.message_id for r in recalled}) == len(recalled)
    assert [t.text for t in await enhanced.history("c1", 2)] == [
        "Caroline's pottery bowl cracked in the kiln",
        "we ordered pizza",
    ]
    assert await enhanced.forget_user("discord:alice") == 5


async def test_a_failure_below_surfaces_as_an_exception(memory: SqlMemory) -> None:
    enhanced = MultiQueryMemory(memory, MemoryEnhancementConfig())
    await enhanced.remember(Turn("c1", "user", "the garden needs watering", "alice"))
    await memory.flush()
    await memory.drop()  # the store loses its table: a real failure, not a simulated one
    with pytest.raises(Exception) as caught:
        await enhanced.recall(RecallQuery("garden", "c1", "alice", Scope.CHANNEL))
    assert "turns" in str(caught.value)
    await memory.init()  # so the fixture can clean up
