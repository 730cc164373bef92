"""``ToneGuidedLLM``: one short system line telling the model how the user seems to feel.

It becomes the patch ``emotion_tone``. An emotion failure propagates: falling back to the plain
request (and counting it) is the patch framework's job, so a failure is never hidden here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from workers.components import LLM, EmotionReader, LLMRequest, LLMResult
from workers.emotion.labels import NEUTRAL

__all__ = ["DEFAULT_TONE_GUIDANCE", "ToneConfig", "ToneGuidedLLM"]

DEFAULT_TONE_GUIDANCE: dict[str, str] = {
    "anger": "The user seems frustrated: stay calm, acknowledge the problem and be brief and concrete.",
    "disgust": "The user seems put off: be matter-of-fact and respectful, do not joke.",
    "fear": "The user seems worried: be reassuring and clear, give concrete next steps.",
    "joy": "The user seems in a good mood: be warm and upbeat.",
    "sadness": "The user seems down: be gentle and supportive.",
    "surprise": "The user seems surprised or curious: explain clearly and check what they want to know.",
}


@dataclass(slots=True)
class ToneConfig:
    min_confidence: float = 0.4  # below this the state is too mixed to steer the tone
    guidance: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TONE_GUIDANCE))


class ToneGuidedLLM:
    def __init__(self, below: LLM, emotions: EmotionReader, config: ToneConfig | None = None) -> None:
        self.below = below
        self.emotions = emotions
        self.config = config or ToneConfig()

    async def tone_line(self, user_id: str | None) -> str | None:
        if not user_id:
            return None
        state = await self.emotions.state(user_id)
        if state.label == NEUTRAL or state.confidence < self.config.min_confidence:
            return None
        return self.config.guidance.get(state.label)

    async def complete(self, request: LLMRequest) -> LLMResult:
        line = await self.tone_line(request.user_id)
        if line is None:
            return await self.below.complete(request)
        # After the leading system messages, so the operator's system prompt still comes first.
        insert_at = 0
        while insert_at < len(request.messages) and request.messages[insert_at].get("role") == "system":
            insert_at += 1
        messages = [*request.messages[:insert_at], {"role": "system", "content": line}, *request.messages[insert_at:]]
        guided = replace(request, messages=messages, metadata={**request.metadata, "emotion_tone": line})
        return await self.below.complete(guided)
