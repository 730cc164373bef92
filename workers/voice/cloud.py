"""``LiteLLMSpeechVoice``: cloud text-to-speech through litellm's speech API (``PATCHBAY_TTS_MODEL``).

The provider is asked for Opus directly, which OpenAI-style speech APIs return in an OGG
container: the same bytes go to Telegram, Discord and the browser. Providers take a speed but no
pitch, so a pitch other than 1 is logged and counted as not applied rather than dropped unseen.
"""

from __future__ import annotations

import logging

from workers.components import Audio, VoiceStyle
from workers.llm.litellm_loader import load_litellm
from workers.voice.settings import VoiceSettings
from workers.voice.tools import VoiceError, ogg_opus_duration_s

__all__ = ["LiteLLMSpeechVoice"]

log = logging.getLogger(__name__)


class LiteLLMSpeechVoice:
    def __init__(self, settings: VoiceSettings) -> None:
        if not settings.tts_model:
            raise ValueError("LiteLLMSpeechVoice needs PATCHBAY_TTS_MODEL")
        self.settings = settings
        self.model: str = settings.tts_model
        self.pitch_not_applied = 0  # how often a caller asked for a pitch the provider cannot do

    async def speak(self, text: str, style: VoiceStyle) -> Audio:
        if not text.strip():
            raise VoiceError("nothing to say: the text is empty")
        if abs(style.pitch - 1.0) >= 1e-3:
            self.pitch_not_applied += 1
            log.info("tts provider %s has no pitch control: pitch x%.2f not applied", self.model, style.pitch)
        litellm = load_litellm()
        response = await litellm.aspeech(
            model=self.model,
            input=text[: self.settings.max_chars],
            voice=style.voice or self.settings.tts_voice,
            response_format="opus",
            speed=style.speed,
            api_base=self.settings.tts_api_base,
            api_key=self.settings.tts_api_key(),
            timeout=self.settings.timeout_s,
        )
        data: bytes = response.content
        return Audio(data, "audio/ogg", ogg_opus_duration_s(data), 48000)
