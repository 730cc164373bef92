"""Voice input: speech → text through litellm's transcription API (``PATCHBAY_STT_MODEL``)."""

from __future__ import annotations

from workers.llm.litellm_loader import load_litellm
from workers.voice.settings import VoiceSettings

__all__ = ["VOICE_INPUT_NOT_SET_UP", "Transcriber", "TranscriptionUnavailable"]

VOICE_INPUT_NOT_SET_UP = (
    "Voice input is not set up on this bot, so I could not listen to your voice message. Please send it as text."
)


class TranscriptionUnavailable(RuntimeError):
    """No transcription provider is configured; ``str()`` is a message the worker can show the user."""

    def __init__(self, message: str = VOICE_INPUT_NOT_SET_UP) -> None:
        super().__init__(message)


class Transcriber:
    def __init__(self, settings: VoiceSettings | None = None) -> None:
        self.settings = settings or VoiceSettings()

    @property
    def available(self) -> bool:
        return bool(self.settings.stt_model)

    async def transcribe(self, audio: bytes, *, filename: str = "voice.ogg", language: str | None = None) -> str:
        """The text spoken in ``audio``; raises ``TranscriptionUnavailable`` when no provider is configured."""
        if not self.settings.stt_model:
            raise TranscriptionUnavailable()
        litellm = load_litellm()
        response = await litellm.atranscription(
            model=self.settings.stt_model,
            # The filename's extension tells the provider the container; Telegram and Discord send OGG.
            file=(filename, audio),
            language=language,
            api_base=self.settings.stt_api_base,
            api_key=self.settings.stt_api_key(),
            timeout=self.settings.timeout_s,
        )
        return str(response.text or "").strip()
