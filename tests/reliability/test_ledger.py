"""The ledger's state machine on a real Redis: every rule that keeps a message from being lost or answered twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis

from gateway.shared import keys
from gateway.shared.ledger import Claim, Commit, Ledger
from gateway.shared.redis_urls import redis_client as async_redis

QUEUE = "test-queue"


@pytest.fixture
async def ledger(redis_client: redis.Redis, redis_url: str) -> AsyncIterator[Ledger]:
    client = async_redis(redis_url)  # redis_client (sync) has flushed the database for this test
    try:
        yield Ledger(client, lease_s=1.0, max_attempts=3, queue=QUEUE)
    finally:
        await client.aclose()


async def test_admission_records_once_and_numbers_the_conversation(ledger: Ledger) -> None:
    first = await ledger.admit("m1", "c1", '{"x": 1}')
    second = await ledger.admit("m2", "c1", '{"x": 2}')
    other = await ledger.admit("m3", "c2", '{"x": 3}')
    assert first is not None and second is not None and other is not None
    assert (first.seq, second.seq, other.seq) == (1, 2, 1)
    assert len({first.dispatch, second.dispatch, other.dispatch}) == 3
    assert await ledger.admit("m1", "c1", '{"x": 1}') is None  # a redelivery of m1
    assert (await ledger.stats()).open == 3


async def test_a_live_claim_is_left_to_its_holder(ledger: Ledger) -> None:
    admitted = await ledger.admit("m1", "c1", "{}")
    assert admitted is not None
    holder = await ledger.begin("m1", "worker-a", admitted.dispatch)
    copy = await ledger.begin("m1", "worker-b", admitted.dispatch)
    assert holder.claim is Claim.CLAIMED and holder.envelope_json == "{}" and holder.seq == 1
    assert copy.claim is Claim.BUSY
    # The copy did nothing to the record: the holder still commits and finishes it.
    assert await ledger.commit("m1", "worker-a") is Commit.OK
    assert await ledger.finish("m1", "c1", "worker-a", "replied")
    assert (await ledger.begin("m1", "worker-c", admitted.dispatch)).claim is Claim.DONE
    assert (await ledger.stats()).open == 0


async def test_a_dead_holders_message_is_dispatched_again_once_its_lease_lapses(
    ledger: Ledger, redis_client: redis.Redis
) -> None:
    admitted = await ledger.admit("m1", "c1", "{}")
    assert admitted is not None
    await ledger.begin("m1", "worker-a", admitted.dispatch)  # ... and worker-a is killed
    redis_client.zadd(keys.LEDGER_OPEN, {"m1": 0})  # due now
    assert await ledger.reap() == [], "the lease is live: nothing to do"
    await asyncio.sleep(1.1)
    redis_client.zadd(keys.LEDGER_OPEN, {"m1": 0})
    due = await ledger.reap()
    assert [key for key, _ in due] == ["m1"] and due[0][1] > admitted.dispatch
    assert await ledger.reap() == [], "one reaper round dispatches it once"
    again = await ledger.begin("m1", "worker-b", due[0][1])
    assert again.claim is Claim.CLAIMED


async def test_a_task_lost_between_queue_and_worker_is_found(ledger: Ledger, redis_client: redis.Redis) -> None:
    lost = await ledger.admit("lost", "c1", "{}")
    later = await ledger.admit("later", "c2", "{}")
    assert lost is not None and later is not None
    redis_client.rpush(QUEUE, "someone else's task")  # the queue is not empty
    redis_client.zadd(keys.LEDGER_OPEN, {"lost": 0, "later": 0})
    assert await ledger.reap() == [], "both may still be in the queue"
    await ledger.begin("later", "worker-a", later.dispatch)  # a task queued after `lost` has started
    redis_client.zadd(keys.LEDGER_OPEN, {"lost": 0})
    assert [key for key, _ in await ledger.reap()] == ["lost"], "FIFO: `lost` left the queue and nobody holds it"


async def test_an_empty_queue_means_an_unclaimed_message_was_lost(ledger: Ledger, redis_client: redis.Redis) -> None:
    admitted = await ledger.admit("only", "c1", "{}")
    assert admitted is not None
    redis_client.zadd(keys.LEDGER_OPEN, {"only": 0})
    assert [key for key, _ in await ledger.reap()] == ["only"]


async def test_turns_follow_the_sequence_and_heal_over_vanished_records(
    ledger: Ledger, redis_client: redis.Redis
) -> None:
    for n in range(1, 4):
        await ledger.admit(f"m{n}", "c1", "{}")
    assert await ledger.turn("m1", "c1", 1) == 1
    assert await ledger.turn("m2", "c1", 2) == 0 and await ledger.turn("m3", "c1", 3) == 0
    await ledger.begin("m1", "w", 1)
    await ledger.finish("m1", "c1", "w", "replied")
    assert await ledger.turn("m2", "c1", 2) == 1 and await ledger.turn("m3", "c1", 3) == 0
    redis_client.delete(keys.message_record("m2"))  # lost outside the ledger's control (e.g. a flushed key)
    assert await ledger.turn("m3", "c1", 3) == 1, "a vanished predecessor never stalls its conversation"


async def test_begin_turn_claims_and_checks_the_turn_in_one_script(ledger: Ledger) -> None:
    for n in range(1, 3):
        await ledger.admit(f"m{n}", "c1", f'{{"n": {n}}}')
    first = await ledger.begin_turn("m1", "w", 1)
    assert (first.claim, first.seq, first.conversation_key, first.attempt) == (Claim.CLAIMED, 1, "c1", 1)
    second = await ledger.begin_turn("m2", "w", 2)
    assert second.claim is Claim.CLAIMED and second.envelope_json == '{"n": 2}'
    assert second.attempt == 0, "m1 is unfinished: m2 must wait for its turn"
    assert (await ledger.begin_turn("m1", "other", 1)).claim is Claim.BUSY
    await ledger.finish("m1", "c1", "w", "replied")
    assert await ledger.turn("m2", "c1", 2) == 1, "waiting did not count as an attempt"
    assert (await ledger.begin_turn("m1", "w", 1)).claim is Claim.DONE


async def test_a_lapsed_holder_cannot_send_once_another_worker_holds_it(ledger: Ledger) -> None:
    admitted = await ledger.admit("m1", "c1", "{}")
    assert admitted is not None
    await ledger.begin("m1", "slow", admitted.dispatch)
    await asyncio.sleep(1.1)  # the slow worker's lease lapses ...
    assert (await ledger.begin("m1", "fast", admitted.dispatch + 1)).claim is Claim.CLAIMED
    assert not await ledger.renew("m1", "slow")
    assert await ledger.commit("m1", "slow") is Commit.LOST
    assert await ledger.commit("m1", "fast") is Commit.OK
    await ledger.finish("m1", "c1", "fast", "replied")
    assert await ledger.commit("m1", "slow") is Commit.DONE


async def test_a_lapsed_lease_nobody_took_is_taken_back(ledger: Ledger) -> None:
    admitted = await ledger.admit("m1", "c1", "{}")
    assert admitted is not None
    await ledger.begin("m1", "w", admitted.dispatch)
    await asyncio.sleep(1.1)
    assert await ledger.renew("m1", "w")
    assert (await ledger.begin("m1", "other", admitted.dispatch)).claim is Claim.BUSY


async def test_release_schedules_a_retry_without_counting_a_crash(ledger: Ledger, redis_client: redis.Redis) -> None:
    admitted = await ledger.admit("m1", "c1", "{}")
    assert admitted is not None
    await ledger.begin("m1", "w", admitted.dispatch)
    assert await ledger.turn("m1", "c1", 1) == 1
    assert await ledger.release("m1", "w", delay_s=30)
    score = redis_client.zscore(keys.LEDGER_OPEN, "m1")
    now_ms = redis_client.time()[0] * 1000
    assert score is not None and score > now_ms + 25_000, "not before the delay the platform asked for"
    assert await ledger.turn("m1", "c1", 1) == 1
    again = await ledger.begin("m1", "w2", admitted.dispatch)
    assert again.claim is Claim.CLAIMED and again.retries == 1


async def test_only_handling_that_began_counts_as_an_attempt(ledger: Ledger) -> None:
    first = await ledger.admit("poison", "c1", "{}")
    waiting = await ledger.admit("behind", "c1", "{}")
    assert first is not None and waiting is not None
    attempts = []
    for attempt in range(4):  # max_attempts=3: the fourth attempt is the one that apologises
        await ledger.begin("poison", f"w{attempt}", first.dispatch)
        await ledger.begin("behind", f"w{attempt}", waiting.dispatch)
        attempts.append(await ledger.turn("poison", "c1", 1))
        assert await ledger.turn("behind", "c1", 2) == 0  # only waiting: no attempt
        await asyncio.sleep(1.05)  # the worker holding both dies: the leases lapse
    assert [ledger.exhausted(n) for n in attempts] == [False, False, False, True]
    await ledger.begin("poison", "last", first.dispatch)
    await ledger.finish("poison", "c1", "last", "abandoned")
    await ledger.begin("behind", "last", waiting.dispatch)
    assert await ledger.turn("behind", "c1", 2) == 1, "the message that only waited starts with a clean count"


async def test_finishing_drops_the_envelope_but_keeps_the_dedupe_record(
    ledger: Ledger, redis_client: redis.Redis
) -> None:
    admitted = await ledger.admit("m1", "c1", '{"secret": "text"}')
    assert admitted is not None
    await ledger.begin("m1", "w", admitted.dispatch)
    await ledger.finish("m1", "c1", "w", "replied")
    record = redis_client.hgetall(keys.message_record("m1"))
    assert b"env" not in record and record[b"state"] == b"done" and record[b"outcome"] == b"replied"
    assert 0 < redis_client.ttl(keys.message_record("m1")) <= keys.DONE_TTL_S
    assert await ledger.admit("m1", "c1", "{}") is None
    assert not await ledger.finish("m1", "c1", "w", "replied"), "finishing twice changes nothing"
