"""The multi-query layer: its queries, its results over the real base memory, and failures that surface."""

from __future__ import annotations

import pytest

from workers.components import RecallQuery, Scope, Turn
from workers.memory import SqlMemory
from workers.memory.enhanced import MultiQueryConfig, MultiQueryMemory, derive_queries


def test_queries_respect_the_weight_floor_and_the_count_cap() -> None:
    config = MultiQueryConfig()
    recent = [Turn("c", "user", "We talked about the Lisbon trip", "alice")]
    queries = derive_queries("Did Caroline and Melanie enjoy the Lisbon pottery workshop?", recent, config)
    assert 1 <= len(queries) <= config.max_queries_per_search
    assert all(q.weight >= config.min_query_weight for q in queries)
    assert [q.weight for q in queries] == sorted((q.weight for q in queries), reverse=True)
    assert queries[0].kind == "message"
    light = MultiQueryConfig(min_query_weight=0.95)
    assert [q.kind for q in derive_queries("Did Caroline enjoy it?", [], light)] == ["message"]


@pytest.mark.parametrize("fusion", ["weighted", "rrf"])
async def test_enhanced_recall_returns_relevant_memories(memory: SqlMemory, fusion: str) -> None:
    enhanced = MultiQueryMemory(memory, MultiQueryConfig(fusion=fusion))  # type: ignore[arg-type]
    for i, words in enumerate(
        [
            "Caroline joined a pottery class in May",
            "Melanie went camping with her kids",
            "it rained all week",
            "Caroline's pottery bowl cracked in the kiln",
            "we ordered pizza",
        ]
    ):
        await enhanced.remember(Turn("c1", "user", words, "alice", user_id="alice", message_id=f"m{i}"))
    await memory.flush()
    recalled = await enhanced.recall(
        RecallQuery("What did Caroline make in pottery?", "c1", "alice", Scope.CHANNEL, limit=3)
    )
    assert recalled and len(recalled) <= 3
    assert {r.turn.message_id for r in recalled[:2]} == {"m0", "m3"}
    assert len({r.turn.message_id for r in recalled}) == len(recalled)  # duplicates merged
    assert [t.text for t in await enhanced.history("c1", 2)] == [
        "Caroline's pottery bowl cracked in the kiln",
        "we ordered pizza",
    ]
    assert await enhanced.forget_user("alice") == 5


async def test_a_failure_below_surfaces_as_an_exception(memory: SqlMemory) -> None:
    enhanced = MultiQueryMemory(memory)
    await enhanced.remember(Turn("c1", "user", "the garden needs watering", "alice"))
    await memory.flush()
    await memory.drop()  # the store loses its table: a real failure, not a simulated one
    with pytest.raises(Exception) as caught:
        await enhanced.recall(RecallQuery("garden", "c1", "alice", Scope.CHANNEL))
    assert "turns" in str(caught.value)
    await memory.init()  # so the fixture can clean up
