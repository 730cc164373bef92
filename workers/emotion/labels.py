"""The seven Ekman-style classes every emotion reading uses, in a fixed order (the model's columns)."""

from __future__ import annotations

from typing import Final

__all__ = ["EMOTIONS", "NEUTRAL"]

EMOTIONS: Final[tuple[str, ...]] = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
NEUTRAL: Final[str] = "neutral"
