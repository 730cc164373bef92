"""The resilience layer against simulated providers on 127.0.0.1 and a real Redis."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
import redis
from prometheus_client import REGISTRY

from adapters.sim.llm import LLMSimulator, sim_reply
from patches.llm_resilience import ResilientLLM, build_resilient_llm
from tests.e2e.harness import free_port
from workers.components import LLMRequest, LLMResult
from workers.llm.client import LiteLLMClient
from workers.llm.settings import LLMSettings, ProviderConfig

os.environ.setdefault("OPENAI_API_KEY", "sk-simulator")

MODEL = "openai/gpt-4o-mini"


class _FailingBase:
    """A base client that is down too, so that the apology path is reachable without the local model."""

    model = "base/down"

    async def complete(self, request: LLMRequest) -> LLMResult:
        raise ConnectionError("base client unreachable")


@pytest.fixture
async def sims() -> AsyncIterator[list[LLMSimulator]]:
    simulators = [LLMSimulator(), LLMSimulator(), LLMSimulator()]
    for sim in simulators:
        await sim.start()
    try:
        yield simulators
    finally:
        for sim in simulators:
            await sim.stop()


def _settings(sims: list[LLMSimulator], **overrides: object) -> LLMSettings:
    values: dict[str, object] = {
        "providers": [ProviderConfig(model=MODEL, api_base=sim.base_url, timeout=2) for sim in sims],
        "num_retries": 0,
        "allowed_fails": 100,
        "cooldown_s": 60,
        "last_resort_base": False,
        "cache_enabled": False,
    }
    values.update(overrides)
    return LLMSettings(**values)  # type: ignore[arg-type]


def _layer(sims: list[LLMSimulator], redis_url: str, **overrides: object) -> ResilientLLM:
    return build_resilient_llm(_FailingBase(), _settings(sims, **overrides), redis_url)


def _ask(text: str = "hello", user: str = "u1", **kwargs: object) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": text}], user_id=user, **kwargs)  # type: ignore[arg-type]


def _requests(sim: LLMSimulator) -> int:
    return int(sim.stats()["chat_requests"])


def _cache_count(result: str) -> float:
    return REGISTRY.get_sample_value("patchbay_llm_cache_requests_total", {"result": result}) or 0.0


async def test_first_provider_failing_falls_back_to_the_second_in_order(
    sims: list[LLMSimulator], redis_client: redis.Redis, redis_url: str
) -> None:
    sims[0].configure(error_rate=1.0, error_kinds=["500"])
    result = await _layer(sims, redis_url).complete(_ask())
    assert result.text == sim_reply(_ask().messages)
    assert [_requests(s) for s in sims] == [1, 1, 0]
    assert len(result.errors) == 1 and result.errors[0].startswith("chain-0:")
    assert "InternalServerError" in result.errors[0]
    assert not result.degraded
    assert result.prompt_tokens > 0 and result.completion_tokens > 0 and result.cost_usd > 0


async def test_a_provider_failing_with_500_is_left_at_once_while_a_later_one_answers(
    sims: list[LLMSimulator], redis_client: redis.Redis, redis_url: str
) -> None:
    sims[0].configure(error_rate=1.0, error_kinds=["500"])
    result = await _layer(sims, redis_url, num_retries=2).complete(_ask())
    assert result.text == sim_reply(_ask().messages) and len(result.errors) == 1
    assert [_requests(s) for s in sims] == [1, 1, 0]  # no retry of the failing one: another provider was there
    (failed,), (answered,) = sims[0].stats()["request_times"], sims[1].stats()["request_times"]
    assert answered - failed < 0.5  # a backoff would be 0.5 s at least


async def test_an_unreachable_provider_is_left_at_once(
    sims: list[LLMSimulator], redis_client: redis.Redis, redis_url: str
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there: a connection error
    providers = [ProviderConfig(model=MODEL, api_base=closed, timeout=2), *_settings(sims[:1]).providers]
    layer = build_resilient_llm(_FailingBase(), _settings(sims, providers=providers, num_retries=2), redis_url)
    started = asyncio.get_running_loop().time()
    result = await layer.complete(_ask())
    assert result.text == sim_reply(_ask().messages) and "chain-0" in result.errors[0]
    assert _requests(sims[0]) == 1
    assert asyncio.get_running_loop().time() - started < 2.0  # no backoff (0.5 s + 1 s for two retries)


async def test_the_last_provider_is_retried_with_exponential_backoff(
    sims: list[LLMSimulator], redis_client: redis.Redis, redis_url: str
) -> None:
    sims[0].configure(fail_next=2, fail_next_kind="500")
    result = await _layer(sims[:1], redis_url, num_retries=2).complete(_ask())
    assert result.errors == [] and result.text
    assert _requests(sims[0]) == 3  # one attempt and two retries: no other provider could answer
    times = sims[0].stats()["request_times"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # litellm's schedule is 0.5 s * 2**retry plus up to 0.75 s of jitter: only lower bounds are safe to assert
    assert gaps[0] >= 0.5 and gaps[1] >= 1.0


async def test_a_provider_is_retried_when_the_later_ones_cannot_answer(
    sims: list[LLMSimulator], redis_client: redis.Redis, redis_url: str
) -> None:
    layer = _layer(sims[:2], redis_url, num_retries=1)
    # The second provider's key is revoked (401: cooled down at once, in Redis): the first one's 500 is retried.
    sims[0].configure(fail_next=1, fail_next_kind="500")
    sims[1].configure(fail_next=1, fail_next_kind="401")
    result = await layer.complete(_ask())
    assert result.text == sim_reply(_ask().messages)
    assert [_requests(s) for s in sims[:2]] == [2, 1]
    assert len(result.errors) == 1 and "chain-1" in result.errors[0]
    # Next request: the second is cooling down (skipped without a call), so the first is retried again.
    sims[0].configure(fail_next=1, fail_next_kind="500")
    result = await layer.complete(_ask("again"))
    assert result.text == sim_reply(_ask("again").messages)
    assert [_requests(s) for s in sims[:2]] == [4, 1]


async def test_429_with_a_short_retry_after_is_waited_for_on_the_same_provider(
    sims: list[LLMSimulator], redis_client: redis.Redis, redis_url: str
) -> None:
    sims[0].configure(fail_next=1, fail_next_kind="429", retry_after_s=1)
    result = await _layer(sims, redis_url, num_retries=1, retry_after_max_s=1.0).complete(_ask())
    assert result.errors == []
    assert [_requests(s) for s in sims] == [2, 0, 0]
    first, second = sims[0].stats()["request_times"][:2]
    assert second - first >= 1.0  # Retry-After: 1 was honoured


async def test_429_with_a_long_retry_after_falls_through_at_once(
    sims: list[LLMSimulator], redis_client: redis.Redis, redis_url: str
) -> None:
    sims[0].configure(fail_next=1, fail_next_kind="429", retry_after_s=30)
    result = await _layer(sims, redis_url, num_retries=2, retry_after_max_s=1.0).complete(_ask())
    assert [_requests(s) for s in sims] == [1, 1, 0]
    assert len(result.errors) == 1 and "RateLimit" in result.errors[0]


async def test_malformed_body_is_a_provider_failure(
    sims: list[LLMSimulator], redis_client: redis.Redis, redis_url: str
) -> None:
    sims[0].configure(error_rate=1.0, error_kinds=["malformed"])
    result = await _layer(sims, redis_url).complete(_ask())
    assert result.text == sim_reply(_ask().messages)
    assert len(result.errors) == 1 and "chain-0" in result.errors[0]


async def test_all_providers_down_gives_the_apology_with_every_error(
    sims: list[LLMSimulator], redis_client: redis.Redis, redis_url: str
) -> None:
    sims[0].configure(error_rate=1.0, error_kinds=["500"])
    sims[1].configure(error_rate=1.0, error_kinds=["malformed"])
    sims[2].configure(error_rate=1.0, error_kinds=["429"])
    layer = _layer(sims, redis_url, last_resort_base=True)
    before = REGISTRY.get_sample_value("patchbay_llm_all_providers_down_total") or 0.0
    result = await layer.complete(_ask())
    assert result.degraded
    assert result.text == layer.settings.apology
    assert len(result.errors) == 4
    assert [e.split(":", 1)[0] for e in result.errors] == ["chain-0", "chain-1", "chain-2", "base/down"]
    assert "Unterminated" in result.errors[1] and "RateLimit" in result.errors[2]
    assert "unreachable" in result.errors[3]
    assert REGISTRY.get_sample_value("patchbay_llm_all_providers_down_total") == before + 1


async def test_the_base_client_is_the_last_resort(
    sims: list[LLMSimulator], redis_client: redis.Redis, redis_url: str
) -> None:
    for sim in sims[:2]:
        sim.configure(error_rate=1.0)
    async with LLMSimulator() as base_sim:
        below = LiteLLMClient("openai/base-model", api_base=base_sim.base_url)
        layer = build_resilient_llm(below, _settings(sims[:2], last_resort_base=True), redis_url)
        result = await layer.complete(_ask())
        assert _requests(base_sim) == 1
    assert result.model == "openai/base-model" and len(result.errors) == 2


async def test_a_cooldown_recorded_by_one_process_is_seen_by_another(
    sims: list[LLMSimulator], redis_client: redis.Redis, redis_url: str
) -> None:
    sims[0].configure(error_rate=1.0, error_kinds=["500"])
    settings = {"allowed_fails": 0, "cooldown_s": 120}
    result = await _layer(sims[:2], redis_url, **settings).complete(_ask())
    assert len(result.errors) == 1
    assert any(key.endswith(b":cooldown") for key in redis_client.keys("*"))
    assert [_requests(s) for s in sims[:2]] == [1, 1]

    providers = [{"model": MODEL, "api_base": s.base_url, "timeout": 2} for s in sims[:2]]
    script = (
        "import asyncio, json\n"
        "from tests.test_llm_resilience import _FailingBase, _ask\n"
        "from patches.llm_resilience import build_resilient_llm\n"
        "from workers.llm.settings import LLMSettings\n"
        f"settings = LLMSettings(num_retries=0, allowed_fails=0, cooldown_s=120, last_resort_base=False,"
        f" cache_enabled=False)\n"
        f"layer = build_resilient_llm(_FailingBase(), settings, {redis_url!r})\n"
        "result = asyncio.run(layer.complete(_ask()))\n"
        "print(json.dumps({'text': result.text, 'errors': result.errors}))\n"
    )
    env = {**os.environ, "PATCHBAY_LLM_PROVIDERS": json.dumps(providers)}
    completed = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    other = json.loads(completed.stdout.strip().splitlines()[-1])
    assert other["text"] == sim_reply(_ask().messages)
    assert [_requests(s) for s in sims[:2]] == [1, 2]  # the second process never called the cooled-down provider
    assert "chain-0" in other["errors"][0]


async def test_cache_hit_miss_bypass_and_multi_turn(
    sims: list[LLMSimulator], redis_client: redis.Redis, redis_url: str
) -> None:
    layer = _layer(sims, redis_url, cache_enabled=True)
    history = [{"role": "system", "content": "be brief"}]
    for i in range(4):
        history += [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]
    chat = [*history, {"role": "user", "content": "and now?"}]  # 10 messages: litellm's cache would skip it
    hits, misses, bypasses = _cache_count("hit"), _cache_count("miss"), _cache_count("bypass")

    first = await layer.complete(LLMRequest(messages=chat, user_id="u1"))
    second = await layer.complete(LLMRequest(messages=chat, user_id="u1"))
    third = await layer.complete(LLMRequest(messages=chat, user_id="u1", use_cache=False))

    assert not first.cached and first.cost_usd > 0
    assert second.cached and second.text == first.text and second.cost_usd == 0.0
    assert not third.cached
    assert _requests(sims[0]) == 2
    assert (_cache_count("hit"), _cache_count("miss"), _cache_count("bypass")) == (hits + 1, misses + 1, bypasses + 1)
    ttl = max(redis_client.ttl(key) for key in redis_client.keys("patchbay:llm:cache:*"))
    assert 0 < ttl <= layer.settings.cache_ttl_s


async def test_cache_never_shares_a_personal_answer_between_users(
    sims: list[LLMSimulator], redis_client: redis.Redis, redis_url: str
) -> None:
    layer = _layer(sims, redis_url, cache_enabled=True)
    alice = await layer.complete(_ask("what do you remember about me?", user="alice"))
    bob = await layer.complete(_ask("what do you remember about me?", user="bob"))
    assert not alice.cached and not bob.cached
    assert _requests(sims[0]) == 2
    shared_1 = await layer.complete(_ask("opening hours?", user="alice", personal=False))
    shared_2 = await layer.complete(_ask("opening hours?", user="bob", personal=False))
    assert not shared_1.cached and shared_2.cached


async def test_apologies_are_never_cached(sims: list[LLMSimulator], redis_client: redis.Redis, redis_url: str) -> None:
    for sim in sims:
        sim.configure(error_rate=1.0)
    layer = _layer(sims, redis_url, cache_enabled=True)
    assert (await layer.complete(_ask())).degraded
    for sim in sims:
        sim.configure(error_rate=0.0)
    answer = await layer.complete(_ask())
    assert not answer.degraded and not answer.cached


async def test_context_is_trimmed_to_the_budget_before_the_provider_sees_it(
    sims: list[LLMSimulator], redis_client: redis.Redis, redis_url: str
) -> None:
    long_history = [{"role": "system", "content": "You are terse."}]
    for i in range(30):
        long_history += [
            {"role": "user", "content": f"tell me fact number {i} about rivers and mountains in detail"},
            {"role": "assistant", "content": f"fact {i}: rivers flow downhill from the mountains to the sea"},
        ]
    long_history.append({"role": "user", "content": "summarise"})
    layer = _layer(sims, redis_url, context_tokens=120)
    full = await _layer(sims[1:], redis_url).complete(LLMRequest(messages=long_history, user_id="u1"))
    trimmed = await layer.complete(LLMRequest(messages=long_history, user_id="u1"))
    # the simulator's usage counts what it received: the trimmed prompt is within budget, the full one is not
    assert trimmed.prompt_tokens < full.prompt_tokens
    assert trimmed.text != full.text  # the reply is a function of the messages sent: fewer were sent
