"""Concurrent Lua calls sent together (gateway/limits/batching.py), against a real Redis."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from gateway.limits.batching import ScriptBatcher

# Counts its calls per key, and fails on demand: each call's own answer must come back to it.
SCRIPT = """
if ARGV[1] == 'fail' then return redis.error_reply('asked to fail') end
return {redis.call('INCR', KEYS[1]), ARGV[1]}
"""


@pytest.fixture
async def client(redis_url: str, redis_client: redis.Redis) -> aioredis.Redis:
    connection = aioredis.Redis.from_url(redis_url)
    yield connection
    await connection.aclose()


async def test_concurrent_calls_each_get_their_own_answer_in_fewer_writes(client: aioredis.Redis) -> None:
    batcher = ScriptBatcher(client, SCRIPT)
    await client.script_load(SCRIPT)  # loaded: a first batch would otherwise be sent twice (tested below)
    sent: list[int] = []
    original = batcher._pipeline

    async def counting(batch):  # type: ignore[no-untyped-def]
        sent.append(len(batch))
        return await original(batch)

    batcher._pipeline = counting  # type: ignore[method-assign]
    answers = await asyncio.gather(*(batcher([f"k{i % 3}"], [f"a{i}"]) for i in range(50)))
    assert [answer[1] for answer in answers] == [f"a{i}".encode() for i in range(50)]
    assert [int(await client.get(f"k{i}")) for i in range(3)] == [17, 17, 16]  # each call ran exactly once
    assert sum(sent) == 50 and len(sent) < 5  # together: gather starts all 50 before the first batch goes


async def test_one_call_failing_fails_only_that_call(client: aioredis.Redis) -> None:
    batcher = ScriptBatcher(client, SCRIPT)
    outcomes = await asyncio.gather(
        *(batcher(["k"], ["fail" if i == 5 else "ok"]) for i in range(10)), return_exceptions=True
    )
    assert isinstance(outcomes[5], ResponseError)
    assert all(not isinstance(o, BaseException) for i, o in enumerate(outcomes) if i != 5)
    assert int(await client.get("k")) == 9


async def test_a_flushed_script_is_loaded_again_and_nothing_runs_twice(client: aioredis.Redis) -> None:
    batcher = ScriptBatcher(client, SCRIPT)
    await batcher(["k"], ["warm"])
    await client.script_flush()
    answers = await asyncio.gather(*(batcher(["k"], [str(i)]) for i in range(20)))
    assert len(answers) == 20 and int(await client.get("k")) == 21


async def test_a_call_cancelled_before_its_batch_is_sent_is_not_sent(client: aioredis.Redis) -> None:
    batcher = ScriptBatcher(client, SCRIPT)
    first = asyncio.ensure_future(batcher(["k"], ["first"]))
    await asyncio.sleep(0)  # the first call's batch is in flight
    waiting = asyncio.ensure_future(batcher(["k"], ["cancelled"]))
    await asyncio.sleep(0)
    waiting.cancel()
    await first
    await asyncio.sleep(0.05)
    assert int(await client.get("k")) == 1
