"""The seed's ``apply_emotion_voice_patch``: the user's emotional state moves the voice's pitch and speed.

Mapping (seed): happy → pitch ×1.1, speed ×1.05; sad → 0.9, 0.95; excited → 1.2, 1.15; calm → 1.0, 0.9
(docs/voice.md says how the seven emotions map onto these). If reading the emotion fails, the
framework falls back to basic synthesis, counted and logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patches.registry import make_apply_function, register_patch
from patches.spec import PatchConfig, PatchSpec
from workers.components import ComponentKind, Voice

__all__ = ["SPEC", "EmotionVoiceConfig", "apply_emotion_voice_patch"]


class EmotionVoiceConfig(PatchConfig, patch="emotion_voice", default_enabled=False):
    """Off by default, as in the seed: ``ENABLE_EMOTION_VOICE=true`` or ``patchbay patches enable emotion_voice``."""


def _build(below: Voice, config: EmotionVoiceConfig, deps: Mapping[str, Any]) -> Voice:
    from workers.voice.emotion_voice import EmotionAwareVoice

    return EmotionAwareVoice(below, deps["emotion"])


SPEC = register_patch(
    PatchSpec(
        name="emotion_voice",
        kind=ComponentKind.VOICE,
        interface=Voice,
        config_cls=EmotionVoiceConfig,
        layer_factory=_build,
        enhances=("speak",),
        deps=("emotion",),
        description="emotion-aware pitch and speaking rate",
    )
)
apply_emotion_voice_patch = make_apply_function(SPEC)
