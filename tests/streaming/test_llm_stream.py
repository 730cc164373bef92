"""``LLM.stream`` end to end over real sockets: the base client, the resilience chain, the cache, the layer."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import redis
from prometheus_client import REGISTRY

from adapters.sim.llm import LLMSimulator, sim_reply
from patches.llm_resilience import SPEC, STREAM_NOTE, build_resilient_llm
from patches.runtime import PatchRuntime
from workers.components import Delta, LLMRequest, LLMResult
from workers.llm.client import LiteLLMClient
from workers.llm.echo import EchoLLM
from workers.llm.settings import LLMSettings, ProviderConfig

os.environ.setdefault("OPENAI_API_KEY", "sk-simulator")

MODEL = "openai/gpt-4o-mini"


def _ask(text: str = "tell me a long story please", user: str = "u1") -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": text}], user_id=user)


async def _collect(stream: AsyncIterator[Delta]) -> tuple[list[str], LLMResult | None]:
    pieces: list[str] = []
    result = None
    async for delta in stream:
        if delta.text:
            pieces.append(delta.text)
        if delta.result is not None:
            result = delta.result
    return pieces, result


@pytest.fixture
async def sims() -> AsyncIterator[list[LLMSimulator]]:
    simulators = [LLMSimulator(token_delay_ms=5), LLMSimulator(token_delay_ms=5)]
    for sim in simulators:
        await sim.start()
    try:
        yield simulators
    finally:
        for sim in simulators:
            await sim.stop()


def _settings(sims: list[LLMSimulator], **overrides: object) -> LLMSettings:
    values: dict[str, object] = {
        "providers": [ProviderConfig(model=MODEL, api_base=sim.base_url, timeout=5) for sim in sims],
        "num_retries": 0,
        "allowed_fails": 100,
        "cooldown_s": 60,
        "last_resort_base": False,
        "cache_enabled": False,
    }
    values.update(overrides)
    return LLMSettings(**values)  # type: ignore[arg-type]


def _cut(provider: str) -> float:
    return REGISTRY.get_sample_value("patchbay_llm_streams_cut_total", {"provider": provider}) or 0.0


async def test_base_client_streams_piece_by_piece_and_records_usage(sims: list[LLMSimulator]) -> None:
    client = LiteLLMClient(MODEL, api_base=sims[0].base_url)
    pieces, result = await _collect(client.stream(_ask()))
    expected = sim_reply(_ask().messages)
    assert len(pieces) > 3 and "".join(pieces) == expected
    assert result is not None and result.text == expected
    assert result.prompt_tokens > 0 and result.completion_tokens > 0 and result.cost_usd > 0
    timing = sims[0].stats()["streams"][0]
    assert timing["last"] > timing["first"] > 0


async def test_a_provider_failing_before_its_first_token_hands_over_to_the_next(
    sims: list[LLMSimulator], redis_client: redis.Redis, redis_url: str
) -> None:
    sims[0].configure(stream_fail_next=1, stream_fail_at=0)
    layer = build_resilient_llm(EchoLLM(), _settings(sims), redis_url)
    pieces, result = await _collect(layer.stream(_ask()))
    assert "".join(pieces) == sim_reply(_ask().messages)  # nothing of the failed provider was said
    assert result is not None and len(result.errors) == 1 and result.errors[0].startswith("chain-0:")
    assert [s.stats()["chat_requests"] for s in sims] == [1, 1]


async def test_a_provider_breaking_off_mid_answer_ends_it_with_the_note_counted(
    sims: list[LLMSimulator], redis_client: redis.Redis, redis_url: str
) -> None:
    sims[0].configure(stream_fail_next=1, stream_fail_at=3)
    before = _cut(MODEL)
    layer = build_resilient_llm(EchoLLM(), _settings(sims), redis_url)
    pieces, result = await _collect(layer.stream(_ask()))
    said = "".join(pieces)
    assert said.endswith(STREAM_NOTE)
    assert sim_reply(_ask().messages).startswith(said[: -len(STREAM_NOTE)])  # what was said, not a second start
    assert result is not None and result.text == said and result.errors
    assert _cut(MODEL) == before + 1
    assert sims[1].stats()["chat_requests"] == 0  # a second provider would repeat the first words


async def test_a_cached_answer_streams_as_one_chunk(
    sims: list[LLMSimulator], redis_client: redis.Redis, redis_url: str
) -> None:
    layer = build_resilient_llm(EchoLLM(), _settings(sims, cache_enabled=True), redis_url)
    first, _ = await _collect(layer.stream(_ask()))
    again, result = await _collect(layer.stream(_ask()))
    assert again == ["".join(first)] and result is not None and result.cached
    assert sims[0].stats()["chat_requests"] == 1


async def test_the_patch_layer_guards_stream_and_the_echo_base_streams(redis_client: redis.Redis) -> None:
    runtime = PatchRuntime()
    from patches.registry import PatchRegistry

    registry = PatchRegistry()
    registry.register(SPEC)
    base = EchoLLM()
    stack = await runtime.build_stack(registry, {"llm": base}, kinds=("llm",), deps={"redis_url": None})
    try:
        assert type(stack["llm"]).__name__ != "EchoLLM"  # the patched layer, not the base
        pieces, result = await _collect(stack["llm"].stream(_ask("one two three")))
    finally:
        await runtime.aclose()
    assert "".join(pieces) == "echo: one two three" and len(pieces) == 4
    assert result is not None and result.provider == "echo"
