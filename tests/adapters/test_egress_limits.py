"""Central send limits: shared by every worker through one Redis, honouring 429 pauses."""

from __future__ import annotations

import pytest

from adapters.base import SendError
from adapters.egress_limits import EgressLimits, PlatformRates, Rate, RateLimitedError


@pytest.fixture
async def two_workers(redis_url: str, redis_client):
    rates = {
        "telegram": PlatformRates(
            overall=Rate(30, 1.0, burst=30), per_chat=Rate(1, 1.0, burst=3), per_group=Rate(20, 60.0, burst=5)
        )
    }
    first, second = EgressLimits(redis_url, rates=rates), EgressLimits(redis_url, rates=rates)
    yield first, second
    await first.aclose()
    await second.aclose()


async def test_per_chat_burst_is_shared_between_workers(two_workers) -> None:
    first, second = two_workers
    decisions = [await (first if i % 2 else second).check("telegram", "42") for i in range(4)]
    assert decisions[:3] == [0, 0, 0]
    assert 0 < decisions[3] <= 1.0, "the fourth send in a second waits, whichever worker asks"
    assert await first.check("telegram", "43") == 0, "another chat is not held back"


async def test_group_limit_applies_only_to_groups(two_workers) -> None:
    first, _ = two_workers
    waits = [await first.check("telegram", f"-{i}", is_group=True) for i in range(6)]
    assert waits[:5] == [0] * 5 and waits[5] == 0, "five different groups: each under its own limit"
    same_group = [await first.check("telegram", "-100", is_group=True) for _ in range(4)]
    assert same_group[3] > 0


async def test_overall_limit_spans_chats(redis_url: str, redis_client) -> None:
    limits = EgressLimits(redis_url, rates={"x": PlatformRates(overall=Rate(2, 1.0, burst=2), per_chat=None)})
    try:
        assert [await limits.check("x", str(chat)) for chat in range(2)] == [0, 0]
        assert await limits.check("x", "99") > 0
    finally:
        await limits.aclose()


async def test_a_pause_holds_every_worker(two_workers) -> None:
    first, second = two_workers
    await first.pause("telegram", 5.0, chat_id="7")
    assert await second.check("telegram", "7") > 4.0
    assert await second.check("telegram", "8") == 0, "a chat pause leaves other chats alone"
    await first.pause("telegram", 3.0)
    assert await second.check("telegram", "8") > 2.0, "a platform pause holds every chat"


async def test_call_pauses_and_retries_after_a_429(two_workers) -> None:
    first, _ = two_workers
    attempts: list[int] = []

    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RateLimitedError("429", retry_after=0.2)
        return "sent"

    assert await first.call("telegram", "9", flaky) == "sent"
    assert len(attempts) == 2 and first.pauses == 1


async def test_call_does_not_retry_permanent_errors(two_workers) -> None:
    first, _ = two_workers
    attempts: list[int] = []

    async def refused() -> None:
        attempts.append(1)
        raise SendError("chat not found", permanent=True)

    with pytest.raises(SendError):
        await first.call("telegram", "10", refused)
    assert len(attempts) == 1
