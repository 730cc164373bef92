"""Tone guidance: the user's current emotional state as one system line in the LLM prompt.

Its own patch (not part of ``emotion_voice``) so that an operator can switch the prompt change off
while keeping the voice, or the reverse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patches.registry import make_apply_function, register_patch
from patches.spec import PatchConfig, PatchSpec
from workers.components import LLM, ComponentKind

__all__ = ["SPEC", "EmotionToneConfig", "apply_emotion_tone_patch"]


class EmotionToneConfig(PatchConfig, patch="emotion_tone", default_enabled=False):
    timeout_s: float | None = 0.5  # reading the state is one Redis call; never let it hold the answer up


def _build(below: LLM, config: EmotionToneConfig, deps: Mapping[str, Any]) -> LLM:
    from workers.emotion.tone import ToneGuidedLLM

    return ToneGuidedLLM(below, deps["emotion"])


SPEC = register_patch(
    PatchSpec(
        name="emotion_tone",
        kind=ComponentKind.LLM,
        interface=LLM,
        config_cls=EmotionToneConfig,
        layer_factory=_build,
        enhances=("complete",),
        deps=("emotion",),
        description="adds the user's emotional state to the prompt as tone guidance",
    )
)
apply_emotion_tone_patch = make_apply_function(SPEC)
