"""``patchbay/echo``: a model that answers instantly with the user's own words, without litellm.

For checking a deployment's wiring (platforms, queue, workers) without any model, and for
benchmarks that measure the pipeline rather than an LLM client.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from workers.components import Delta, LLMRequest, LLMResult
from workers.vision.parts import content_text

__all__ = ["ECHO_MODEL", "EchoLLM"]

ECHO_MODEL = "patchbay/echo"


class EchoLLM:
    """``PATCHBAY_ECHO_DELAY`` (seconds, default 0) makes it behave like a slow model, for capacity tests."""

    model = ECHO_MODEL

    def __init__(self, delay_s: float | None = None) -> None:
        self.delay_s = float(os.environ.get("PATCHBAY_ECHO_DELAY", "0")) if delay_s is None else delay_s
        self.token_delay_s = float(os.environ.get("PATCHBAY_ECHO_TOKEN_DELAY", "0"))

    async def complete(self, request: LLMRequest) -> LLMResult:
        if self.delay_s > 0:
            await asyncio.sleep(self.delay_s)
        last = next((content_text(m["content"]) for m in reversed(request.messages) if m.get("role") == "user"), "")
        return LLMResult(text=f"echo: {last}", model=ECHO_MODEL, provider="echo")

    async def stream(self, request: LLMRequest) -> AsyncIterator[Delta]:
        """The same answer word by word (``PATCHBAY_ECHO_TOKEN_DELAY`` seconds between words, default 0)."""
        result = await self.complete(request)
        words = result.text.split(" ")
        for index, word in enumerate(words):
            if index and self.token_delay_s > 0:
                await asyncio.sleep(self.token_delay_s)
            yield Delta(text=word if index == 0 else " " + word)
        yield Delta(result=result)

    async def aclose(self) -> None:
        return None
