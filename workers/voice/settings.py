"""Configuration of voice output and input: ``[voice]`` in patchbay.toml, ``PATCHBAY_*`` in the environment."""

from __future__ import annotations

import os
from typing import ClassVar, Literal

from pydantic import AliasChoices, Field

from gateway.shared.config import PatchbaySettings

__all__ = ["AudioFormat", "VoiceSettings"]

AudioFormat = Literal["ogg", "wav"]


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class VoiceSettings(PatchbaySettings):
    TOML_SECTION: ClassVar[str] = "voice"

    enabled: bool = Field(default=True, validation_alias=_alias("PATCHBAY_VOICE_ENABLED", "enabled"))
    # ---- the local engine (espeak-ng for speech, sox for pitch, opusenc for OGG/Opus)
    espeak_path: str = Field(default="espeak-ng", validation_alias=_alias("PATCHBAY_ESPEAK_PATH", "espeak_path"))
    sox_path: str = Field(default="sox", validation_alias=_alias("PATCHBAY_SOX_PATH", "sox_path"))
    opusenc_path: str = Field(default="opusenc", validation_alias=_alias("PATCHBAY_OPUSENC_PATH", "opusenc_path"))
    espeak_voice: str = Field(default="en-us", validation_alias=_alias("PATCHBAY_ESPEAK_VOICE", "espeak_voice"))
    base_rate_wpm: int = Field(
        default=175, ge=80, le=450, validation_alias=_alias("PATCHBAY_VOICE_RATE", "base_rate_wpm")
    )
    base_pitch: int = Field(default=50, ge=0, le=99, validation_alias=_alias("PATCHBAY_VOICE_PITCH", "base_pitch"))
    opus_bitrate_kbps: int = Field(
        default=32, ge=6, le=256, validation_alias=_alias("PATCHBAY_OPUS_BITRATE", "opus_bitrate_kbps")
    )
    default_format: AudioFormat = Field(
        default="ogg", validation_alias=_alias("PATCHBAY_VOICE_FORMAT", "default_format")
    )
    max_chars: int = Field(
        default=1500,
        ge=1,
        validation_alias=_alias("PATCHBAY_VOICE_MAX_CHARS", "max_chars"),
        description="longer replies are spoken up to this many characters (a voice message is not an essay)",
    )
    timeout_s: float = Field(default=30.0, gt=0, validation_alias=_alias("PATCHBAY_VOICE_TIMEOUT", "timeout_s"))
    # ---- cloud text-to-speech through litellm (wins over the local engine when set)
    tts_model: str | None = Field(default=None, validation_alias=_alias("PATCHBAY_TTS_MODEL", "tts_model"))
    tts_voice: str = Field(default="alloy", validation_alias=_alias("PATCHBAY_TTS_VOICE", "tts_voice"))
    tts_api_base: str | None = Field(default=None, validation_alias=_alias("PATCHBAY_TTS_API_BASE", "tts_api_base"))
    tts_api_key_env: str | None = Field(
        default=None, validation_alias=_alias("PATCHBAY_TTS_API_KEY_ENV", "tts_api_key_env")
    )
    # ---- voice input through litellm's transcription API
    stt_model: str | None = Field(default=None, validation_alias=_alias("PATCHBAY_STT_MODEL", "stt_model"))
    stt_api_base: str | None = Field(default=None, validation_alias=_alias("PATCHBAY_STT_API_BASE", "stt_api_base"))
    stt_api_key_env: str | None = Field(
        default=None, validation_alias=_alias("PATCHBAY_STT_API_KEY_ENV", "stt_api_key_env")
    )
    # ---- per-user preferences
    key_prefix: str = Field(
        default="patchbay:voice:", validation_alias=_alias("PATCHBAY_VOICE_KEY_PREFIX", "key_prefix")
    )

    def tts_api_key(self) -> str | None:
        return os.environ.get(self.tts_api_key_env) if self.tts_api_key_env else None

    def stt_api_key(self) -> str | None:
        return os.environ.get(self.stt_api_key_env) if self.stt_api_key_env else None
