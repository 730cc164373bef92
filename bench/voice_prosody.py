"""Does the emotion-aware voice really move pitch and speed by the configured factors? Measured from the audio.

    python bench/voice_prosody.py [--format ogg|wav] [--text "..."]

The same sentence is spoken once with the plain voice (the baseline, in this run) and once per
emotion through ``EmotionAwareVoice``; each result is decoded back with the real decoder, its F0
estimated by YIN and its speaking time measured. Ratios are against the baseline:
F0 ratio = F0 / F0_baseline (expect the preset's pitch), speed ratio = time_baseline / time
(expect the preset's speed). Exits 1 when any ratio is outside the stated tolerance.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from patches.emotion_voice import EmotionAwareVoice, EmotionVoiceConfig
from workers.components import EmotionReading, VoiceStyle
from workers.emotion.labels import EMOTIONS
from workers.voice.engine import detect_engine
from workers.voice.espeak import EspeakVoice
from workers.voice.prosody import DURATION_TOLERANCE, F0_TOLERANCE, measure
from workers.voice.settings import AudioFormat, VoiceSettings

SENTENCE = "The weather is lovely today, and I hope you have a wonderful afternoon with your friends."


class FixedStateReader:
    """An EmotionReader whose every user is in one given state: the benchmark's controlled input."""

    def __init__(self, label: str) -> None:
        self.label = label

    async def read(self, text: str) -> EmotionReading:
        return await self.state("")

    async def state(self, user_id: str) -> EmotionReading:
        return EmotionReading(self.label, 1.0, {e: float(e == self.label) for e in EMOTIONS})

    async def observe(self, user_id: str, reading: EmotionReading) -> EmotionReading:
        return await self.state(user_id)


async def run(text: str, audio_format: AudioFormat) -> bool:
    base = EspeakVoice(VoiceSettings(), audio_format=audio_format)
    baseline_audio = await base.speak(text, VoiceStyle())
    baseline = await measure(baseline_audio.data, baseline_audio.mime_type)
    print(f"baseline: F0 {baseline.f0_hz:.1f} Hz, speech {baseline.speech_s:.3f} s ({baseline_audio.mime_type})")
    print(f"tolerance: F0 ±{F0_TOLERANCE:.0%}, duration ±{DURATION_TOLERANCE:.0%}")
    print(f"{'emotion':10}{'preset':9}{'pitch':>7}{'F0 ratio':>10}{'speed':>7}{'speed ratio':>13}  ok")
    config = EmotionVoiceConfig()
    all_ok = True
    for emotion in EMOTIONS:
        chosen = config.prosody_for(emotion)
        if chosen is None:
            continue
        preset, prosody = chosen
        voice = EmotionAwareVoice(base, config, FixedStateReader(emotion))
        audio = await voice.speak(text, VoiceStyle(user_id="bench"))
        measured = await measure(audio.data, audio.mime_type)
        f0_ratio = measured.f0_hz / baseline.f0_hz
        speed_ratio = baseline.speech_s / measured.speech_s
        ok = (
            abs(f0_ratio / prosody.pitch - 1) <= F0_TOLERANCE
            and abs(speed_ratio / prosody.speed - 1) <= DURATION_TOLERANCE
        )
        all_ok &= ok
        print(
            f"{emotion:10}{preset:9}{prosody.pitch:>7.2f}{f0_ratio:>10.3f}{prosody.speed:>7.2f}{speed_ratio:>13.3f}"
            f"  {'yes' if ok else 'NO'}"
        )
    return all_ok


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--format", choices=("ogg", "wav"), default="ogg")
    parser.add_argument("--text", default=SENTENCE)
    args = parser.parse_args(argv)
    available, reason = detect_engine(VoiceSettings())
    if not available:
        sys.exit(reason)
    sys.exit(0 if asyncio.run(run(args.text, args.format)) else 1)


if __name__ == "__main__":
    main()
