"""``emotion_tone``: the user's current emotional state as one system line in the LLM prompt.

Its own patch (not part of ``emotion_voice``) so that an operator can switch the prompt change off
while keeping the voice, or the reverse. Its own work is one read of the user's state (a Redis
call): that is all its time budget covers; the LLM's generation below it is not its time. A
failure to read the state raises here, and the framework answers with the unchanged prompt,
counted and logged. It sits above ``llm_resilience``, so the whole provider chain and its cache
see the guided prompt.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

from pydantic import Field

from patches.runtime import make_apply_function
from patches.spec import PatchConfig, PatchSpec
from workers.components import LLM, ComponentKind, Delta, EmotionReader, LLMRequest, LLMResult
from workers.emotion.labels import NEUTRAL

__all__ = ["DEFAULT_TONE_GUIDANCE", "SPEC", "EmotionToneConfig", "ToneGuidedLLM", "apply_emotion_tone_patch"]

DEFAULT_TONE_GUIDANCE: dict[str, str] = {
    "anger": "The user seems frustrated: stay calm, acknowledge the problem and be brief and concrete.",
    "disgust": "The user seems put off: be matter-of-fact and respectful, do not joke.",
    "fear": "The user seems worried: be reassuring and clear, give concrete next steps.",
    "joy": "The user seems in a good mood: be warm and upbeat.",
    "sadness": "The user seems down: be gentle and supportive.",
    "surprise": "The user seems surprised or curious: explain clearly and check what they want to know.",
}


class EmotionToneConfig(PatchConfig, patch="emotion_tone", default_enabled=False):
    timeout_s: float | None = 0.5  # its own work is one Redis read; the LLM call below is not counted
    min_confidence: float = Field(default=0.4, ge=0.0, le=1.0)  # below this the state is too mixed to steer
    guidance: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_TONE_GUIDANCE))


class ToneGuidedLLM:
    """Enhances ``LLM.complete`` and ``LLM.stream``: one tone line after the leading system messages, then the layer below."""

    def __init__(self, below: LLM, config: EmotionToneConfig, emotions: EmotionReader) -> None:
        self.below = below
        self.config = config
        self.emotions = emotions

    async def tone_line(self, user_id: str | None) -> str | None:
        if not user_id:
            return None
        state = await self.emotions.state(user_id)
        if state.label == NEUTRAL or state.confidence < self.config.min_confidence:
            return None
        return self.config.guidance.get(state.label)

    async def guided(self, request: LLMRequest) -> LLMRequest:
        line = await self.tone_line(request.user_id)
        if line is None:
            return request
        # After the leading system messages, so the operator's system prompt still comes first.
        insert_at = 0
        while insert_at < len(request.messages) and request.messages[insert_at].get("role") == "system":
            insert_at += 1
        messages = [*request.messages[:insert_at], {"role": "system", "content": line}, *request.messages[insert_at:]]
        return replace(request, messages=messages, metadata={**request.metadata, "emotion_tone": line})

    async def complete(self, request: LLMRequest) -> LLMResult:
        return await self.below.complete(await self.guided(request))

    async def stream(self, request: LLMRequest) -> AsyncIterator[Delta]:
        async for delta in self.below.stream(await self.guided(request)):
            yield delta


def _build(below: LLM, config: EmotionToneConfig, deps: Mapping[str, Any]) -> ToneGuidedLLM:
    return ToneGuidedLLM(below, config, deps["emotion"])


SPEC = PatchSpec(
    name="emotion_tone",
    kind=ComponentKind.LLM,
    interface=LLM,
    config_cls=EmotionToneConfig,
    factory=_build,
    enhances=("complete", "stream"),
    above=("llm_resilience",),  # the tone line is part of the request the chain (and its cache) sees
    deps=("emotion",),
    description="adds the user's emotional state to the prompt as tone guidance",
)
apply_emotion_tone_patch = make_apply_function(SPEC)
