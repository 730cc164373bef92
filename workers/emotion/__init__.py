"""Emotion analysis: an offline seven-class classifier and a per-user emotional state shared through Redis."""

from workers.emotion.classifier import LexiconEmotionClassifier
from workers.emotion.labels import EMOTIONS, NEUTRAL
from workers.emotion.manager import EmotionManager
from workers.emotion.settings import EmotionSettings

__all__ = [
    "EMOTIONS",
    "NEUTRAL",
    "EmotionManager",
    "EmotionSettings",
    "LexiconEmotionClassifier",
]
