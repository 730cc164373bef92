"""What analytics adds to the reply path, per message, against the same reply path without it.

    python bench/analytics_cost.py [--redis-url URL] [--messages 3000]

The reply path modelled here is the worker's Redis work at egress: serialise the Reply, mark the
message done and hand the reply over (one pipelined round trip). Analytics adds the ``reply``
event: either its own ``await EventSink.emit`` (one LPUSH round trip) or, better, an LPUSH on the
pipeline the worker already sends (``EventSink.add_to_pipeline``). Modes are interleaved in rounds
so that machine noise hits all of them alike. Goal: <= 0.2 ms added per message.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from gateway.analytics import EventSink
from gateway.embedded_redis import EmbeddedRedis
from gateway.shared.envelope import Envelope, Reply
from gateway.shared.redis_urls import redis_py_url

GOAL_MS = 0.2
ROUNDS = 5


@contextmanager
def bench_redis(url: str | None) -> Iterator[str]:
    """``--redis-url`` / ``REDIS_URL``, else a private embedded server on a unix socket."""
    url = url or os.environ.get("REDIS_URL")
    if url:
        yield redis_py_url(url)
        return
    with (
        tempfile.TemporaryDirectory(prefix="patchbay-bench-") as directory,
        EmbeddedRedis(Path(directory), persist=False) as server,
    ):
        yield server.url


def reply_event(envelope: Envelope, started: float) -> dict[str, Any]:
    return {
        "kind": "reply",
        "key": envelope.dedupe_key,
        "platform": str(envelope.platform),
        "conversation_id": envelope.conversation_id,
        "user_id": envelope.author_id,
        "reply_ids": ["1234567890"],
        "ts_worker_start": started,
        "ts_llm_done": started + 0.5,
        "ts_egress": time.time(),
        "llm_provider": "openai",
        "llm_model": "gpt-4o-mini",
        "prompt_tokens": 412,
        "completion_tokens": 57,
        "cost_usd": 0.00009,
        "cache_hit": False,
        "patches": [{"patch": "memory_enhancement", "method": "recall", "outcome": "applied", "reason": None}],
        "variants": {"memory_enhancement": True},
        "voice": False,
        "degraded": None,
        "error": None,
    }


async def reply_path(client: aioredis.Redis, sink: EventSink, envelope: Envelope, mode: str) -> None:
    started = time.time()
    reply = Reply.answering(envelope, "Here is a short answer of a typical length for a chat reply.")
    async with client.pipeline(transaction=False) as pipe:
        pipe.set(f"bench:done:{envelope.dedupe_key}", "1", ex=600)
        pipe.rpush("bench:replies", reply.model_dump_json())
        if mode == "pipelined":
            sink.add_to_pipeline(pipe, reply_event(envelope, started))
        await pipe.execute()
    if mode == "own_round_trip":
        await sink.emit(reply_event(envelope, started))


async def measure(url: str, messages: int) -> dict[str, list[float]]:
    client = aioredis.Redis.from_url(url)
    sink = EventSink(url)
    envelopes = [
        Envelope(
            platform="discord",
            bot_id="b",
            conversation_id=f"c{i % 50}",
            message_id=str(i),
            author_id=f"u{i}",
            text="hi",
        )
        for i in range(messages)
    ]
    per_message: dict[str, list[float]] = {"baseline": [], "pipelined": [], "own_round_trip": []}
    for _ in range(ROUNDS):
        for mode, results in per_message.items():
            started = time.perf_counter()
            for envelope in envelopes:
                await reply_path(client, sink, envelope, mode)
            results.append((time.perf_counter() - started) / messages * 1000)
            await client.delete("bench:replies", sink.queue)
    await client.flushdb()
    await sink.aclose()
    await client.aclose()
    return per_message


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url")
    parser.add_argument("--messages", type=int, default=3000)
    options = parser.parse_args()
    with bench_redis(options.redis_url) as url:
        results = asyncio.run(measure(url, options.messages))
    baseline = statistics.median(results["baseline"])
    print(f"{options.messages} messages x {ROUNDS} rounds (medians of the rounds)")
    print(f"reply path without analytics:           {baseline:.4f} ms/message (1.000)")
    for mode, label in (("pipelined", "+ event on the same pipeline"), ("own_round_trip", "+ await EventSink.emit")):
        cost = statistics.median(results[mode])
        added = cost - baseline
        verdict = "met" if added <= GOAL_MS else "NOT met"
        print(f"reply path {label:<29} {cost:.4f} ms/message ({cost / baseline:.3f}x), "
              f"adds {added:.4f} ms: goal <= {GOAL_MS} ms {verdict}")  # fmt: skip


if __name__ == "__main__":
    main()
