"""Configuration of the emotion manager: ``[emotion]`` in patchbay.toml, ``PATCHBAY_EMOTION_*`` in the environment."""

from __future__ import annotations

from typing import ClassVar

from pydantic import AliasChoices, Field

from gateway.shared.config import PatchbaySettings

__all__ = ["EmotionSettings"]


class EmotionSettings(PatchbaySettings):
    TOML_SECTION: ClassVar[str] = "emotion"

    half_life_s: float = Field(
        default=600.0,
        gt=0,
        validation_alias=AliasChoices("PATCHBAY_EMOTION_HALF_LIFE", "half_life_s"),
        description="seconds after which a user's emotional state is half way back to neutral",
    )
    observation_weight: float = Field(
        default=0.6,
        gt=0,
        le=1,
        validation_alias=AliasChoices("PATCHBAY_EMOTION_OBSERVATION_WEIGHT", "observation_weight"),
        description="how much one new message moves the state (1 = the state becomes that message's reading)",
    )
    key_prefix: str = Field(
        default="patchbay:emotion:",
        validation_alias=AliasChoices("PATCHBAY_EMOTION_KEY_PREFIX", "key_prefix"),
    )
