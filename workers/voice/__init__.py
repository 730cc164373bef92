"""Voice output (espeak-ng offline, or litellm speech), voice input and preferences (the emotion-aware voice is the patch ``patches.emotion_voice``)."""

from workers.voice.cloud import LiteLLMSpeechVoice
from workers.voice.engine import INSTALL_HINT, detect_engine
from workers.voice.espeak import EspeakVoice
from workers.voice.factory import build_base_voice
from workers.voice.preferences import VoicePreferences, parse_voice_command
from workers.voice.settings import VoiceSettings
from workers.voice.tools import VoiceError
from workers.voice.transcribe import VOICE_INPUT_NOT_SET_UP, Transcriber, TranscriptionUnavailable

__all__ = [
    "INSTALL_HINT",
    "VOICE_INPUT_NOT_SET_UP",
    "EspeakVoice",
    "LiteLLMSpeechVoice",
    "Transcriber",
    "TranscriptionUnavailable",
    "VoiceError",
    "VoicePreferences",
    "VoiceSettings",
    "build_base_voice",
    "detect_engine",
    "parse_voice_command",
]
