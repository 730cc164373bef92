"""The provider chain with an image: a vision link gets the parts, a text-only link after it the text."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis

from adapters.sim.llm import LLMSimulator
from patches.llm_resilience import ResilientLLM, build_resilient_llm
from tests.vision.images import picture
from workers.components import LLMRequest, LLMResult
from workers.llm.settings import LLMSettings, ProviderConfig
from workers.vision.images import prepare_image
from workers.vision.parts import IMAGE_PLACEHOLDER, image_message


class _DownBase:
    model = "base/down"

    async def complete(self, request: LLMRequest) -> LLMResult:
        raise ConnectionError("base client unreachable")


@pytest.fixture
async def sims(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[LLMSimulator, LLMSimulator]]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    async with LLMSimulator() as seeing, LLMSimulator(vision=False) as blind:
        yield seeing, blind


def _request() -> LLMRequest:
    image = prepare_image(picture(900, 600), max_side=300, max_pixels=10**7)
    messages = [{"role": "system", "content": "be brief"}, image_message("what is it?", [image])]
    return LLMRequest(messages=messages, user_id="telegram:1", use_cache=False)


def _chain(seeing: LLMSimulator, blind: LLMSimulator, redis_url: str) -> ResilientLLM:
    settings = LLMSettings(
        providers=[
            ProviderConfig(model="openai/gpt-4o", api_base=seeing.base_url, timeout=5),
            ProviderConfig(model="openai/gpt-3.5-turbo", api_base=blind.base_url, timeout=5),
        ],
        num_retries=0,
        last_resort_base=False,
        cache_enabled=False,
    )
    return build_resilient_llm(_DownBase(), settings, redis_url)


async def test_the_vision_link_gets_the_image(
    sims: tuple[LLMSimulator, LLMSimulator], redis_client: redis.Redis, redis_url: str
) -> None:
    seeing, blind = sims
    result = await _chain(seeing, blind, redis_url).complete(_request())
    assert "what is it? [image 300x200]" in result.text and not result.errors
    assert [image["width"] for image in seeing.stats()["images"]] == [300]
    assert blind.stats()["chat_requests"] == 0


async def test_a_text_only_fallback_gets_the_text_and_answers(
    sims: tuple[LLMSimulator, LLMSimulator], redis_client: redis.Redis, redis_url: str
) -> None:
    seeing, blind = sims
    seeing.configure(error_rate=1.0, error_kinds=["500"])
    result = await _chain(seeing, blind, redis_url).complete(_request())
    assert not result.degraded and len(result.errors) == 1  # the vision link failed, the next one answered
    assert blind.stats()["images"] == []  # it would have answered 400 to an image part
    assert blind.stats()["recent_prompts"][-1][-1]["content"] == f"what is it?\n{IMAGE_PLACEHOLDER}"
