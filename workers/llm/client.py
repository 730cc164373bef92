"""The base LLM component: one model through ``litellm.acompletion``, no retries, no cache.

It raises on any provider failure: the worker turns that into a recorded apology, and the
resilience layer above it adds fallbacks, retries and caching. With nothing configured the model
is the local SmolLM2, so the base always works offline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

from workers.components import Delta, LLMRequest, LLMResult
from workers.llm.accounting import deltas_from_stream, result_from_response
from workers.llm.echo import ECHO_MODEL, EchoLLM
from workers.llm.litellm_loader import load_litellm
from workers.llm.metrics import LLM_CALLS
from workers.llm.settings import LLMSettings
from workers.vision.capability import link_sees_images
from workers.vision.parts import has_images, text_only

__all__ = ["LiteLLMClient", "build_base_llm"]

log = logging.getLogger(__name__)


class LiteLLMClient:
    """``workers.components.LLM`` over one litellm model string."""

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key_env: str | None = None,
        timeout_s: float = 60.0,
        max_tokens: int = 200,
    ) -> None:
        self.model = model
        self.api_base = api_base
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens

    async def complete(self, request: LLMRequest) -> LLMResult:
        litellm = load_litellm()
        extra = self._extra()
        messages = request.messages
        if has_images(messages) and not link_sees_images(self.model):
            messages = text_only(messages)  # a model that cannot see gets the text (and a placeholder per image)
        if request.tools:
            extra["tools"] = request.tools
        started = time.perf_counter()
        try:
            response = await litellm.acompletion(
                model=self.model,
                messages=messages,
                max_tokens=min(request.max_tokens, self.max_tokens),
                temperature=request.temperature,
                timeout=self.timeout_s,
                num_retries=0,  # retrying is the resilience layer's job, with backoff and a budget
                max_retries=0,  # the OpenAI SDK underneath would otherwise retry twice on its own
                **extra,
            )
        except Exception:
            LLM_CALLS.labels(provider=self.model, outcome="error").inc()
            raise
        return result_from_response(response, self.model, (time.perf_counter() - started) * 1000)

    def _extra(self) -> dict[str, object]:
        import os

        extra: dict[str, object] = {}
        if self.api_base:
            extra["api_base"] = self.api_base
        if self.api_key_env and os.environ.get(self.api_key_env):
            extra["api_key"] = os.environ[self.api_key_env]
        return extra

    async def stream(self, request: LLMRequest) -> AsyncIterator[Delta]:
        """``complete`` through litellm's ``stream=True``; usage is asked for, so tokens and cost are recorded."""
        litellm = load_litellm()
        started = time.perf_counter()
        try:
            chunks = await litellm.acompletion(
                model=self.model,
                messages=request.messages,
                max_tokens=min(request.max_tokens, self.max_tokens),
                temperature=request.temperature,
                timeout=self.timeout_s,
                num_retries=0,
                max_retries=0,
                stream=True,
                stream_options={"include_usage": True},
                **self._extra(),
            )
            async for delta in deltas_from_stream(chunks, self.model, request.messages, started):
                yield delta
        except Exception:
            LLM_CALLS.labels(provider=self.model, outcome="error").inc()
            raise

    async def aclose(self) -> None:
        """Close litellm's pooled HTTP clients of this event loop (before the loop ends: docs/decisions.md, "The event loop")."""
        litellm = load_litellm()
        await litellm.close_litellm_async_clients()


def build_base_llm(settings: LLMSettings | None = None) -> LiteLLMClient | EchoLLM:
    settings = settings or LLMSettings()
    if settings.model == ECHO_MODEL:
        return EchoLLM()
    return LiteLLMClient(
        settings.model,
        api_base=settings.api_base,
        api_key_env=settings.api_key_env,
        timeout_s=settings.timeout_s,
        max_tokens=settings.max_tokens,
    )
