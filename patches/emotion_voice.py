"""``emotion_voice``: the user's emotional state moves the voice's pitch and speed.

Four voice moods are named presets (happy → pitch ×1.1, speed ×1.05; sad → 0.9, 0.95; excited →
1.2, 1.15; calm → 1.0, 0.9) and the seven Ekman classes map onto them (docs/voice.md). Anger, fear
and disgust map to *calm* on purpose: a bot that answers an angry or frightened user in a higher,
faster voice escalates, a calm voice does not. Its own work is one read of the user's state; the
synthesis below it is not its time. If reading the state fails it raises, and the framework
speaks with the caller's style unchanged, counted and logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pydantic import Field, model_validator

from patches.runtime import make_apply_function
from patches.spec import PatchConfig, PatchSpec
from workers.components import Audio, ComponentKind, EmotionReader, Voice, VoiceStyle

__all__ = [
    "DEFAULT_EMOTION_TO_PRESET",
    "DEFAULT_PRESETS",
    "SPEC",
    "EmotionAwareVoice",
    "EmotionVoiceConfig",
    "Prosody",
    "apply_emotion_voice_patch",
]


@dataclass(frozen=True, slots=True)
class Prosody:
    pitch: float
    speed: float


DEFAULT_PRESETS: dict[str, Prosody] = {
    "happy": Prosody(pitch=1.1, speed=1.05),
    "sad": Prosody(pitch=0.9, speed=0.95),
    "excited": Prosody(pitch=1.2, speed=1.15),
    "calm": Prosody(pitch=1.0, speed=0.9),
}

DEFAULT_EMOTION_TO_PRESET: dict[str, str] = {
    "joy": "happy",
    "sadness": "sad",
    "surprise": "excited",
    "neutral": "calm",
    "anger": "calm",
    "fear": "calm",
    "disgust": "calm",
}


class EmotionVoiceConfig(PatchConfig, patch="emotion_voice", default_enabled=False):
    """Off by default: ``ENABLE_EMOTION_VOICE=true`` or ``patchbay patches enable emotion_voice``."""

    presets: dict[str, Prosody] = Field(default_factory=lambda: dict(DEFAULT_PRESETS))
    emotion_to_preset: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_EMOTION_TO_PRESET))
    min_confidence: float = Field(default=0.35, ge=0.0, le=1.0)  # a more mixed state leaves the style unchanged

    @model_validator(mode="after")
    def _presets_exist(self) -> EmotionVoiceConfig:
        unknown = {p for p in self.emotion_to_preset.values() if p not in self.presets}
        if unknown:
            raise ValueError(f"emotion_to_preset names presets that do not exist: {sorted(unknown)}")
        return self

    def prosody_for(self, emotion: str) -> tuple[str, Prosody] | None:
        preset = self.emotion_to_preset.get(emotion)
        return (preset, self.presets[preset]) if preset else None


class EmotionAwareVoice:
    """Enhances ``Voice.speak``: the caller's style with the user's emotional prosody multiplied in."""

    def __init__(self, below: Voice, config: EmotionVoiceConfig, emotions: EmotionReader) -> None:
        self.below = below
        self.config = config
        self.emotions = emotions

    async def style_for(self, style: VoiceStyle) -> VoiceStyle:
        if not style.user_id:
            return style
        state = await self.emotions.state(style.user_id)
        if state.confidence < self.config.min_confidence:
            return style
        chosen = self.config.prosody_for(state.label)
        if chosen is None:
            return style
        preset, prosody = chosen
        return replace(style, pitch=style.pitch * prosody.pitch, speed=style.speed * prosody.speed, emotion=preset)

    async def speak(self, text: str, style: VoiceStyle) -> Audio:
        return await self.below.speak(text, await self.style_for(style))


def _build(below: Voice, config: EmotionVoiceConfig, deps: Mapping[str, Any]) -> EmotionAwareVoice:
    return EmotionAwareVoice(below, config, deps["emotion"])


SPEC = PatchSpec(
    name="emotion_voice",
    kind=ComponentKind.VOICE,
    interface=Voice,
    config_cls=EmotionVoiceConfig,
    factory=_build,
    enhances=("speak",),
    deps=("emotion",),
    description="emotion-aware pitch and speaking rate",
)
apply_emotion_voice_patch = make_apply_function(SPEC)
