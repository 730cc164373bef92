"""Embedded-backend scale: recall latency with 100,000 memories of 1,000 users, and the cost of remembering.

The store is filled in bulk (SQL executemany, vectors from the hashed embedder, since embedding 100k
texts with MiniLM would take the run's whole time budget and does not change how recall reads them).
Then, in the same run:

- baseline: ``history()`` — a plain indexed SELECT of a conversation's last 10 turns;
- recall (retrieval only): BM25 + vectors + recency over the query's scope, hashed query vector;
- recall (end to end): the same with the MiniLM query embedding, as a worker runs it, one at a time
  and then ``--in-flight`` (50) at once, as a worker with that many messages in flight asks (the goal
  of issue 14 is the p95 of the latter);
- remember(): one turn on the reply path (row + FTS index; the vector is computed in the background),
  against a baseline INSERT into an unindexed table on the same database.

    python bench/memory_scale.py [--memories 100000] [--users 1000] [--queries 300]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workers.components import RecallQuery, Scope, Turn
from workers.memory import SqlMemory
from workers.memory.embedder import HashEmbedder, MiniLMEmbedder
from workers.memory.store import turn_scope_token

TOPICS = (
    "dog cat hiking guitar pottery camping pizza work exam birthday garden football movie book travel piano".split()
)
PLACES = "Paris Lisbon Oslo Berlin Tokyo Denver Austin Cairo Lima Perth".split()


def sentence(rng: random.Random) -> str:
    a, b = rng.sample(TOPICS, 2)
    return f"I was thinking about my {a} and the {b} we saw in {rng.choice(PLACES)} number {rng.randint(0, 9999)}"


async def fill(memory: SqlMemory, memories: int, users: int, channels: int, rng: random.Random) -> None:
    import numpy as np  # here, not at the top: workers (imported above) sets one BLAS thread before numpy loads

    embedder = HashEmbedder()
    now = time.time()
    rows = []
    for i in range(memories):
        user = f"user{rng.randrange(users)}"
        private = rng.random() < 0.5
        conversation = f"discord:bot:dm-{user}" if private else f"discord:bot:channel{rng.randrange(channels)}"
        rows.append(
            {
                "conversation_key": conversation,
                "role": "user",
                "text": sentence(rng),
                "author_id": user,
                "author_name": user,
                "platform": "discord",
                "bot_id": "bot",
                "user_id": user,
                "scope": "private" if private else "channel",
                "message_id": str(i),
                "ts": now - rng.random() * 365 * 86400,
            }
        )
    for row in rows:
        owner = Turn(
            row["conversation_key"],
            "user",
            "",
            row["user_id"],
            platform="discord",
            bot_id="bot",
            user_id=row["user_id"],
            scope=Scope(row["scope"]),
        )
        row["scope_key"] = turn_scope_token(owner)
    vectors = embedder.embed_sync([r["text"] for r in rows]).astype(np.float16)
    sql = memory._dialect.insert_sql().replace(" RETURNING id", "")
    sql = sql.replace(":scope_key)", ":scope_key, :embedding)").replace("scope_key)", "scope_key, embedding)", 1)
    async with memory._engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            chunk = rows[start : start + 5000]
            for k, row in enumerate(chunk):
                row["embedding"] = vectors[start + k].tobytes()
            await conn.execute(text(sql), chunk)


async def timed(calls: list[Callable[[], Awaitable[object]]], in_flight: int = 1) -> list[float]:
    """Each call's latency in ms, ``in_flight`` of them running at once (as a worker's messages do)."""
    semaphore = asyncio.Semaphore(in_flight)
    out: list[float] = []

    async def one(call: Callable[[], Awaitable[object]]) -> None:
        async with semaphore:
            t0 = time.perf_counter()
            await call()
            out.append((time.perf_counter() - t0) * 1000)

    await asyncio.gather(*(one(call) for call in calls))
    return out


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(args: argparse.Namespace, directory: Path) -> None:
    rng = random.Random(7)
    memory = SqlMemory(f"sqlite+aiosqlite:///{directory / 'scale.db'}", embedder=HashEmbedder())
    await memory.init()
    t0 = time.perf_counter()
    await fill(memory, args.memories, args.users, args.channels, rng)
    print(f"filled {args.memories:,} memories of {args.users:,} users in {time.perf_counter() - t0:.1f} s")

    def query(i: int) -> RecallQuery:
        user = f"user{rng.randrange(args.users)}"
        private = i % 2 == 0
        conversation = f"discord:bot:dm-{user}" if private else f"discord:bot:channel{rng.randrange(args.channels)}"
        return RecallQuery(
            text=f"what did I say about my {rng.choice(TOPICS)} in {rng.choice(PLACES)}?",
            conversation_key=conversation,
            user_id=user,
            scope=Scope.PRIVATE if private else Scope.CHANNEL,
            bot_id="bot",
            platform="discord",
            limit=5,
        )

    queries = [query(i) for i in range(args.queries)]
    history = await timed([lambda q=q: memory.history(q.conversation_key, 10) for q in queries])
    recall = await timed([lambda q=q: memory.recall(q) for q in queries])
    memory.embedder = MiniLMEmbedder()
    await memory.embedder.embed(["warm up"])
    end_to_end = await timed([lambda q=q: memory.recall(q) for q in queries[: args.queries // 3]])
    cpu0 = time.process_time()
    loaded = await timed([lambda q=q: memory.recall(q) for q in queries], in_flight=args.in_flight)
    loaded_cpu_ms = (time.process_time() - cpu0) * 1000 / len(queries)
    memory.embedder = HashEmbedder()
    cpu0 = time.process_time()
    loaded_hash = await timed([lambda q=q: memory.recall(q) for q in queries], in_flight=args.in_flight)
    loaded_hash_cpu_ms = (time.process_time() - cpu0) * 1000 / len(queries)

    async with memory._engine.begin() as conn:
        await conn.execute(text("CREATE TABLE plain_insert (conversation_key TEXT, text TEXT, ts REAL)"))

    async def plain_insert(i: int) -> None:
        async with memory._engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO plain_insert VALUES (:c, :t, :ts)"), {"c": "x", "t": sentence(rng), "ts": i}
            )

    turns = [Turn("discord:bot:channel1", "user", sentence(rng), "user1", user_id="user1") for _ in range(args.queries)]
    inserts = await timed([lambda i=i: plain_insert(i) for i in range(args.queries)])
    remembers = await timed([lambda t=t: memory.remember(t) for t in turns])
    await memory.aclose()

    base_p95 = p(history, 0.95)
    print(f"\n{'operation':<42}{'p50 ms':>9}{'p95 ms':>9}{'p95 / baseline':>16}")
    print(f"{'baseline: history() last 10 turns':<42}{statistics.median(history):>9.2f}{base_p95:>9.2f}{1.0:>16.2f}")
    for label, values in (
        ("recall, retrieval only (hashed query)", recall),
        ("recall, end to end (MiniLM query)", end_to_end),
        (f"recall, MiniLM, {args.in_flight} in flight", loaded),
        (f"recall, hashed, {args.in_flight} in flight", loaded_hash),
    ):
        print(f"{label:<42}{statistics.median(values):>9.2f}{p(values, 0.95):>9.2f}{p(values, 0.95) / base_p95:>16.2f}")
    ins_p95 = p(inserts, 0.95)
    print(f"{'baseline: plain INSERT + commit':<42}{statistics.median(inserts):>9.2f}{ins_p95:>9.2f}{1.0:>16.2f}")
    print(
        f"{'remember() on the reply path':<42}{statistics.median(remembers):>9.2f}{p(remembers, 0.95):>9.2f}"
        f"{p(remembers, 0.95) / ins_p95:>16.2f}"
    )
    goal = p(loaded, 0.95)
    print(
        f"\ngoal: recall p95 <= 25 ms end to end (MiniLM query embedding included), {args.memories:,} memories of "
        f"{args.users:,} users, {args.in_flight} recalls in flight -> {goal:.1f} ms ({'met' if goal <= 25 else 'NOT met'}); "
        f"one at a time {p(end_to_end, 0.95):.1f} ms, retrieval only {p(recall, 0.95):.1f} ms"
    )
    print(
        f"CPU per recall under load: {loaded_cpu_ms:.2f} ms with MiniLM, {loaded_hash_cpu_ms:.2f} ms hashed "
        f"(so {args.in_flight} in flight on one core wait about {args.in_flight} x that for the last of them)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--channels", type=int, default=100)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--in-flight", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="patchbay-memscale-") as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
