"""The LLM simulator over real sockets, and the base client (litellm) against it and the real local model."""

from __future__ import annotations

import os

import aiohttp
import pytest

from adapters.sim.llm import LLMSimulator, sim_reply
from workers.components import LLMRequest
from workers.llm.client import LiteLLMClient

os.environ.setdefault("OPENAI_API_KEY", "sk-simulator")  # litellm's openai route insists on a key


def _request(text: str = "hello there") -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": text}], user_id="u1")


async def test_simulator_speaks_openai_and_is_controllable() -> None:
    async with LLMSimulator() as sim, aiohttp.ClientSession() as http:
        assert sim.base_url.endswith("/v1")
        messages = [{"role": "user", "content": "ping"}]
        async with http.post(f"{sim.base_url}/chat/completions", json={"model": "m", "messages": messages}) as resp:
            body = await resp.json()
        assert body["choices"][0]["message"]["content"] == sim_reply(messages)
        assert body["usage"]["prompt_tokens"] > 0 and body["usage"]["completion_tokens"] > 0
        async with http.get(f"{sim.base_url}/models") as resp:
            assert (await resp.json())["data"][0]["id"] == "sim-model"

        async with http.post(f"{sim.root_url}/_control", json={"fail_next": 1, "fail_next_kind": "429"}) as resp:
            assert resp.status == 200
        async with http.post(f"{sim.base_url}/chat/completions", json={"model": "m", "messages": messages}) as resp:
            assert resp.status == 429
            assert resp.headers["Retry-After"] == "1"
            assert (await resp.json())["error"]["code"] == "rate_limit_exceeded"
        async with http.post(f"{sim.root_url}/_control", json={"error_kinds": ["nonsense"]}) as resp:
            assert resp.status == 400
        async with http.get(f"{sim.root_url}/_stats") as resp:
            stats = await resp.json()
        assert stats["chat_requests"] == 2 and stats["errors"] == {"429": 1} and stats["successes"] == 1
        async with http.post(f"{sim.root_url}/_reset"):
            pass
        assert sim.stats()["chat_requests"] == 0


async def test_simulator_streams_sse() -> None:
    async with LLMSimulator() as sim, aiohttp.ClientSession() as http:
        payload = {"model": "m", "messages": [{"role": "user", "content": "stream me"}], "stream": True}
        async with http.post(f"{sim.base_url}/chat/completions", json=payload) as resp:
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            raw = (await resp.read()).decode()
        events = [line[len("data: ") :] for line in raw.splitlines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        assert "stream me" in events[0]


async def test_simulator_error_rate_is_reproducible_with_a_seed() -> None:
    outcomes = []
    for _ in range(2):
        async with LLMSimulator(error_rate=0.5, error_kinds=["500"], seed=42) as sim, aiohttp.ClientSession() as http:
            statuses = []
            for i in range(20):
                payload = {"model": "m", "messages": [{"role": "user", "content": str(i)}]}
                async with http.post(f"{sim.base_url}/chat/completions", json=payload) as resp:
                    statuses.append(resp.status)
            outcomes.append(statuses)
    assert outcomes[0] == outcomes[1]
    assert 500 in outcomes[0] and 200 in outcomes[0]


async def test_base_client_answers_through_litellm_with_usage() -> None:
    async with LLMSimulator() as sim:
        client = LiteLLMClient("openai/gpt-4o-mini", api_base=sim.base_url, timeout_s=5)
        result = await client.complete(_request())
        await client.aclose()
    assert result.text == sim_reply(_request().messages)
    assert result.provider == "openai" and result.model == "openai/gpt-4o-mini"
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    assert result.cost_usd > 0  # gpt-4o-mini is in litellm's cost map
    assert not result.degraded and not result.cached


async def test_base_client_reports_cost_zero_for_an_unknown_model() -> None:
    async with LLMSimulator() as sim:
        client = LiteLLMClient("openai/no-such-model-in-the-cost-map", api_base=sim.base_url, timeout_s=5)
        result = await client.complete(_request())
    assert result.cost_usd == 0.0 and result.text


@pytest.mark.parametrize("kind", ["500", "429", "malformed"])
async def test_base_client_raises_on_provider_failure_without_retrying(kind: str) -> None:
    async with LLMSimulator(fail_next=1, fail_next_kind=kind) as sim:
        client = LiteLLMClient("openai/gpt-4o-mini", api_base=sim.base_url, timeout_s=5)
        with pytest.raises(Exception) as caught:
            await client.complete(_request())
        assert sim.stats()["chat_requests"] == 1  # neither litellm nor the OpenAI SDK retried behind our back
    assert "litellm" in type(caught.value).__module__


async def test_base_client_times_out_on_a_hung_provider() -> None:
    async with LLMSimulator(fail_next=1, fail_next_kind="timeout") as sim:
        client = LiteLLMClient("openai/gpt-4o-mini", api_base=sim.base_url, timeout_s=0.5)
        with pytest.raises(Exception, match=r"(?i)timed? ?out"):
            await client.complete(_request())


@pytest.mark.slow
async def test_real_local_smollm2_answers_through_litellm() -> None:
    client = LiteLLMClient("local/smollm2", max_tokens=24)
    result = await client.complete(
        LLMRequest(messages=[{"role": "user", "content": "Say hello in one short sentence."}], max_tokens=24)
    )
    assert result.text.strip()
    assert result.provider == "local"
    assert result.cost_usd == 0.0
    assert result.prompt_tokens > 0 and 0 < result.completion_tokens <= 24
