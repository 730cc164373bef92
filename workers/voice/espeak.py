"""``EspeakVoice``: offline speech with espeak-ng, pitch-shifted with sox, encoded as OGG/Opus or WAV.

Speed is espeak-ng's own rate (words per minute), which stretches speech far more naturally than
time-stretching audio. Pitch goes through sox's ``pitch`` effect instead of espeak-ng's ``-p``
because ``-p`` is a 0-99 scale with no fixed relation to F0, and ``VoiceStyle.pitch`` promises a
multiplier of the fundamental frequency, which a shift in cents delivers exactly.
"""

from __future__ import annotations

import math

from workers.components import Audio, VoiceStyle
from workers.voice.settings import AudioFormat, VoiceSettings
from workers.voice.tools import VoiceError, repair_streamed_wav, run_tool, wav_duration_s, wav_sample_rate

__all__ = ["MIME_TYPES", "EspeakVoice"]

MIME_TYPES: dict[str, str] = {"ogg": "audio/ogg", "wav": "audio/wav"}
_OPUS_RATE = 48000  # opusenc always encodes at 48 kHz, whatever the input rate


class EspeakVoice:
    def __init__(self, settings: VoiceSettings | None = None, *, audio_format: AudioFormat | None = None) -> None:
        self.settings = settings or VoiceSettings()
        self.audio_format: AudioFormat = audio_format or self.settings.default_format

    def rate_wpm(self, speed: float) -> int:
        # espeak-ng accepts 80-450 words per minute; outside that it clamps silently, so clamp visibly here.
        return max(80, min(450, round(self.settings.base_rate_wpm * speed)))

    async def speak(self, text: str, style: VoiceStyle, *, audio_format: AudioFormat | None = None) -> Audio:
        if not text.strip():
            raise VoiceError("nothing to say: the text is empty")
        if style.pitch <= 0 or style.speed <= 0:
            raise VoiceError(f"pitch and speed must be positive multipliers, got {style.pitch} and {style.speed}")
        wav = await self.synthesize_wav(text[: self.settings.max_chars], style)
        duration = wav_duration_s(wav)
        chosen = audio_format or style.audio_format or self.audio_format  # type: ignore[assignment]
        if chosen == "wav":
            return Audio(wav, MIME_TYPES["wav"], duration, wav_sample_rate(wav))
        return Audio(await self.encode_ogg_opus(wav), MIME_TYPES["ogg"], duration, _OPUS_RATE)

    async def synthesize_wav(self, text: str, style: VoiceStyle) -> bytes:
        """Mono PCM WAV of ``text`` at the style's speed and pitch."""
        settings = self.settings
        args = [
            settings.espeak_path,
            "--stdout",
            "-v",
            style.voice or settings.espeak_voice,
            "-s",
            str(self.rate_wpm(style.speed)),
            "-p",
            str(settings.base_pitch),
            # Text on stdin, never on the command line: a reply starting with "-" must not become an option.
            "--stdin",
        ]
        wav = repair_streamed_wav(await run_tool(args, text.encode("utf-8"), timeout_s=settings.timeout_s))
        if abs(style.pitch - 1.0) < 1e-3:
            return wav
        cents = 1200.0 * math.log2(style.pitch)
        shifted = await run_tool(
            [settings.sox_path, "-t", "wav", "-", "-t", "wav", "-", "pitch", f"{cents:.1f}"],
            wav,
            timeout_s=settings.timeout_s,
        )
        return repair_streamed_wav(shifted)

    async def encode_ogg_opus(self, wav: bytes) -> bytes:
        """OGG/Opus, the format Telegram's sendVoice and Discord's voice messages require."""
        return await run_tool(
            [self.settings.opusenc_path, "--quiet", "--bitrate", str(self.settings.opus_bitrate_kbps), "-", "-"],
            wav,
            timeout_s=self.settings.timeout_s,
        )
