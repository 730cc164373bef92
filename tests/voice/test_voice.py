"""Speech synthesis, the emotion-aware layer and its measured prosody, engine detection, cloud speech and input."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
from aiohttp import web
from redis.exceptions import ConnectionError as RedisConnectionError

from patches.emotion_voice import EmotionAwareVoice, EmotionVoiceConfig, Prosody
from tests.voice.helpers import RecordingVoice, closed_port_url, reading
from workers.components import Audio, VoiceStyle
from workers.emotion import EmotionManager
from workers.voice import (
    EspeakVoice,
    LiteLLMSpeechVoice,
    Transcriber,
    TranscriptionUnavailable,
    VoiceSettings,
    build_base_voice,
    detect_engine,
)
from workers.voice.prosody import DURATION_TOLERANCE, F0_TOLERANCE, ProsodyMeasure, decode_to_pcm, measure

SENTENCE = "The weather is lovely today, and I hope you have a wonderful afternoon with your friends."


def local_settings(**overrides: Any) -> VoiceSettings:
    return VoiceSettings(tts_model=None, stt_model=None, **overrides)


@pytest.fixture(scope="module")
def espeak() -> EspeakVoice:
    available, reason = detect_engine(local_settings())
    assert available, f"these tests need the local engine: {reason}"
    return EspeakVoice(local_settings())


@pytest.fixture
async def emotions(redis_url: str, redis_client: redis.Redis) -> AsyncIterator[EmotionManager]:
    async with EmotionManager(redis_url) as manager:
        yield manager


# --------------------------------------------------------------------------- the audio


async def test_ogg_opus_is_valid_and_decodable(espeak: EspeakVoice) -> None:
    audio = await espeak.speak("Hello from Patchbay.", VoiceStyle())
    assert audio.mime_type == "audio/ogg" and audio.sample_rate == 48000
    assert audio.data[:4] == b"OggS" and b"OpusHead" in audio.data[:200]
    samples, rate = await decode_to_pcm(audio.data, audio.mime_type)  # opusdec fails on a broken stream
    assert len(samples) / rate == pytest.approx(audio.duration_s, rel=0.05)
    assert float(abs(samples).max()) > 0.05  # not silence


async def test_wav_for_browsers_is_valid(espeak: EspeakVoice) -> None:
    audio = await espeak.speak("Hello from Patchbay.", VoiceStyle(), audio_format="wav")
    assert audio.mime_type == "audio/wav" and audio.data[:4] == b"RIFF"
    samples, rate = await decode_to_pcm(audio.data, audio.mime_type)
    assert len(samples) / rate == pytest.approx(audio.duration_s, rel=0.02)


async def test_text_starting_with_a_dash_is_spoken_not_parsed(espeak: EspeakVoice) -> None:
    audio = await espeak.speak("-v is not an option here", VoiceStyle())
    assert audio.duration_s > 0.5


async def test_pitch_and_speed_move_by_the_configured_factors(espeak: EspeakVoice, emotions: EmotionManager) -> None:
    baseline_audio = await espeak.speak(SENTENCE, VoiceStyle())
    baseline = await measure(baseline_audio.data, baseline_audio.mime_type)
    voice = EmotionAwareVoice(espeak, EmotionVoiceConfig(), emotions)
    for emotion, expected in (("joy", Prosody(1.1, 1.05)), ("sadness", Prosody(0.9, 0.95))):
        await emotions.observe(f"user-{emotion}", reading(emotion))
        audio = await voice.speak(SENTENCE, VoiceStyle(user_id=f"user-{emotion}"))
        measured: ProsodyMeasure = await measure(audio.data, audio.mime_type)
        f0_ratio = measured.f0_hz / baseline.f0_hz
        speed_ratio = baseline.speech_s / measured.speech_s
        assert f0_ratio == pytest.approx(expected.pitch, rel=F0_TOLERANCE), emotion
        assert speed_ratio == pytest.approx(expected.speed, rel=DURATION_TOLERANCE), emotion


# --------------------------------------------------------------------------- the emotion-aware layer


@pytest.mark.parametrize(
    ("emotion", "pitch", "speed", "preset"),
    [
        ("joy", 1.1, 1.05, "happy"),
        ("sadness", 0.9, 0.95, "sad"),
        ("surprise", 1.2, 1.15, "excited"),
        ("neutral", 1.0, 0.9, "calm"),
        ("anger", 1.0, 0.9, "calm"),
        ("fear", 1.0, 0.9, "calm"),
        ("disgust", 1.0, 0.9, "calm"),
    ],
)
async def test_state_maps_to_the_configured_prosody(
    emotions: EmotionManager, emotion: str, pitch: float, speed: float, preset: str
) -> None:
    below = RecordingVoice()
    await emotions.observe("u", reading(emotion))
    await EmotionAwareVoice(below, EmotionVoiceConfig(), emotions).speak(
        "hi", VoiceStyle(user_id="u", pitch=1.0, speed=1.0)
    )
    (style,) = below.styles
    assert (style.pitch, style.speed, style.emotion) == (pytest.approx(pitch), pytest.approx(speed), preset)


async def test_mapping_is_configurable_and_multiplies_the_callers_style(emotions: EmotionManager) -> None:
    below = RecordingVoice()
    config = EmotionVoiceConfig(
        presets={"bright": Prosody(1.5, 1.25)}, emotion_to_preset={"joy": "bright"}, min_confidence=0.0
    )
    await emotions.observe("u", reading("joy"))
    await EmotionAwareVoice(below, config, emotions).speak("hi", VoiceStyle(user_id="u", pitch=1.2, speed=0.8))
    assert (below.styles[0].pitch, below.styles[0].speed) == (pytest.approx(1.8), pytest.approx(1.0))


def test_mapping_to_a_missing_preset_is_refused() -> None:
    with pytest.raises(ValueError, match="nowhere"):
        EmotionVoiceConfig(emotion_to_preset={"joy": "nowhere"})


async def test_emotion_failure_raises_so_the_framework_falls_back() -> None:
    below = RecordingVoice()
    async with EmotionManager(closed_port_url()) as broken:
        with pytest.raises(RedisConnectionError):
            await EmotionAwareVoice(below, EmotionVoiceConfig(), broken).speak("hi", VoiceStyle(user_id="u"))
    assert below.styles == []  # nothing spoken with a half-applied style


async def test_without_a_user_the_style_is_unchanged(emotions: EmotionManager) -> None:
    below = RecordingVoice()
    await EmotionAwareVoice(below, EmotionVoiceConfig(), emotions).speak("hi", VoiceStyle(pitch=1.3))
    assert below.styles[0].pitch == 1.3 and below.styles[0].emotion is None


# --------------------------------------------------------------------------- engine detection


def test_missing_engine_turns_voice_off_with_a_reason(caplog: pytest.LogCaptureFixture) -> None:
    settings = local_settings(espeak_path="/nonexistent/espeak-ng")
    available, reason = detect_engine(settings)
    assert not available
    assert "/nonexistent/espeak-ng" in reason and "apt-get install espeak-ng" in reason and "brew" in reason
    with caplog.at_level(logging.WARNING, logger="workers.voice.factory"):
        assert build_base_voice(settings) is None
    assert reason in caplog.text


def test_voice_switched_off_by_setting() -> None:
    assert build_base_voice(local_settings(enabled=False)) is None


def test_factory_picks_the_engine() -> None:
    assert isinstance(build_base_voice(local_settings()), EspeakVoice)
    assert isinstance(build_base_voice(VoiceSettings(tts_model="openai/tts-1")), LiteLLMSpeechVoice)


# --------------------------------------------------------------------------- cloud speech and voice input


@pytest.fixture
async def openai_audio_server(espeak: EspeakVoice) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A local server speaking OpenAI's audio API: /v1/audio/speech and /v1/audio/transcriptions."""
    seen: list[dict[str, Any]] = []
    clip: Audio = await espeak.speak("Hello from the cloud.", VoiceStyle())

    async def speech(request: web.Request) -> web.Response:
        seen.append({"path": request.path, **(await request.json())})
        return web.Response(body=clip.data, content_type="audio/ogg")

    async def transcriptions(request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        assert isinstance(upload, web.FileField)
        seen.append({"path": request.path, "model": form["model"], "bytes": len(upload.file.read())})
        return web.json_response({"text": " hello there "})

    app = web.Application()
    app.router.add_post("/v1/audio/speech", speech)
    app.router.add_post("/v1/audio/transcriptions", transcriptions)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/v1", seen
    finally:
        await runner.cleanup()


async def test_litellm_speech_returns_ogg_opus(
    openai_audio_server: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    api_base, seen = openai_audio_server
    monkeypatch.setenv("TEST_TTS_KEY", "sk-test")
    voice = LiteLLMSpeechVoice(
        VoiceSettings(tts_model="openai/tts-1", tts_api_base=api_base, tts_api_key_env="TEST_TTS_KEY")
    )
    audio = await voice.speak("Hello from the cloud.", VoiceStyle(speed=1.15, pitch=1.2))
    assert audio.mime_type == "audio/ogg" and audio.data[:4] == b"OggS"
    assert audio.duration_s > 0.5
    assert seen[0]["response_format"] == "opus" and seen[0]["speed"] == pytest.approx(1.15)
    assert voice.pitch_not_applied == 1  # the provider has no pitch: counted, not hidden


async def test_transcription_through_litellm(
    openai_audio_server: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    api_base, seen = openai_audio_server
    monkeypatch.setenv("TEST_STT_KEY", "sk-test")
    transcriber = Transcriber(
        VoiceSettings(stt_model="openai/whisper-1", stt_api_base=api_base, stt_api_key_env="TEST_STT_KEY")
    )
    assert await transcriber.transcribe(b"OggS fake audio bytes") == "hello there"
    assert seen[0]["path"] == "/v1/audio/transcriptions" and seen[0]["bytes"] > 0


async def test_transcription_not_set_up_says_so() -> None:
    transcriber = Transcriber(VoiceSettings(stt_model=None))
    assert not transcriber.available
    with pytest.raises(TranscriptionUnavailable, match="Voice input is not set up"):
        await transcriber.transcribe(b"...")
