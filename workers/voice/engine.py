"""Is a speech engine available, and if not, exactly why and how to install one."""

from __future__ import annotations

import shutil

from workers.voice.settings import VoiceSettings

__all__ = ["INSTALL_HINT", "detect_engine", "missing_local_tools"]

INSTALL_HINT = (
    "install the local engine with `sudo apt-get install espeak-ng sox opus-tools` (Debian/Ubuntu) "
    "or `brew install espeak-ng sox opus-tools` (macOS), or set PATCHBAY_TTS_MODEL to a litellm speech model"
)


def missing_local_tools(settings: VoiceSettings) -> list[str]:
    """The configured local tools that cannot be found, each as 'role (path)'."""
    tools = (
        ("espeak-ng", settings.espeak_path),
        ("sox", settings.sox_path),
        ("opusenc", settings.opusenc_path),
    )
    return [f"{role} ({path})" for role, path in tools if shutil.which(path) is None]


def detect_engine(settings: VoiceSettings | None = None) -> tuple[bool, str]:
    """``(available, reason)``: the reason names the engine in use, or what is missing and how to fix it."""
    settings = settings or VoiceSettings()
    if not settings.enabled:
        return False, "voice is off: PATCHBAY_VOICE_ENABLED is false"
    if settings.tts_model:
        return True, f"cloud text-to-speech through litellm: {settings.tts_model}"
    missing = missing_local_tools(settings)
    if missing:
        return False, f"voice is off: not found: {', '.join(missing)}; {INSTALL_HINT}"
    tools = f"{settings.espeak_path} (voice {settings.espeak_voice}), {settings.sox_path}, {settings.opusenc_path}"
    return True, f"local engine: {tools}"
