"""``EmotionAwareVoice``: speak with the pitch and speed of the user's current emotional state.

It becomes the patch ``emotion_voice``. The seed's four voice moods are kept as named presets and
the seven Ekman classes map onto them; anger, fear and disgust map to *calm* on purpose: a bot
that answers an angry or frightened user in a higher, faster voice escalates, a calm voice does not.
An emotion failure raises: the patch framework falls back to the plain voice and counts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from workers.components import Audio, EmotionReader, Voice, VoiceStyle

__all__ = ["DEFAULT_EMOTION_TO_PRESET", "DEFAULT_PRESETS", "EmotionAwareVoice", "EmotionVoiceConfig", "Prosody"]


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


@dataclass(slots=True)
class EmotionVoiceConfig:
    presets: dict[str, Prosody] = field(default_factory=lambda: dict(DEFAULT_PRESETS))
    emotion_to_preset: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_EMOTION_TO_PRESET))
    min_confidence: float = 0.35  # a state more mixed than this is spoken with the caller's style unchanged

    def __post_init__(self) -> None:
        unknown = {p for p in self.emotion_to_preset.values() if p not in self.presets}
        if unknown:
            raise ValueError(f"emotion_to_preset names presets that do not exist: {sorted(unknown)}")

    def prosody_for(self, emotion: str) -> tuple[str, Prosody] | None:
        preset = self.emotion_to_preset.get(emotion)
        return (preset, self.presets[preset]) if preset else None


class EmotionAwareVoice:
    def __init__(self, below: Voice, emotions: EmotionReader, config: EmotionVoiceConfig | None = None) -> None:
        self.below = below
        self.emotions = emotions
        self.config = config or EmotionVoiceConfig()

    async def style_for(self, style: VoiceStyle) -> VoiceStyle:
        """The caller's style with the user's emotional prosody multiplied in."""
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
