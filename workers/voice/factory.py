"""``build_base_voice``: the base voice component for the configured engine, or None with the reason logged."""

from __future__ import annotations

import logging

from workers.components import Voice
from workers.voice.cloud import LiteLLMSpeechVoice
from workers.voice.engine import detect_engine
from workers.voice.espeak import EspeakVoice
from workers.voice.settings import VoiceSettings

__all__ = ["build_base_voice"]

log = logging.getLogger(__name__)


def build_base_voice(settings: VoiceSettings | None = None) -> Voice | None:
    """The voice to speak replies with; None means the bot answers in text only, and the log says why."""
    settings = settings or VoiceSettings()
    available, reason = detect_engine(settings)
    if not available:
        log.warning("%s", reason)
        return None
    log.info("voice replies: %s", reason)
    if settings.tts_model:
        return LiteLLMSpeechVoice(settings)
    return EspeakVoice(settings)
