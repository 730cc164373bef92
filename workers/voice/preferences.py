"""``/voice on|off``: the command users type. Their choice is kept by ``gateway.shared.voice``.

``VoicePreferences`` lives in ``gateway.shared`` because the admin API sets the operator's switch
without importing worker code; it is re-exported here for the worker side.
"""

from __future__ import annotations

import re

from gateway.shared.voice import VoicePreferences

__all__ = ["VoicePreferences", "parse_voice_command"]

_COMMAND = re.compile(r"^\s*/voice(?:@\w+)?(?:\s+(\S+))?\s*$", re.IGNORECASE)
_ON = frozenset({"on", "yes", "enable", "enabled", "true", "1"})
_OFF = frozenset({"off", "no", "disable", "disabled", "false", "0"})


def parse_voice_command(text: str) -> bool | None:
    """True for ``/voice on``, False for ``/voice off``, None when the text is not such a command.

    ``/voice@botname on`` (Telegram's form in groups) counts too; ``/voice`` with an unknown or
    missing argument is not a command, so the worker can answer with usage instead of guessing.
    """
    match = _COMMAND.match(text)
    if not match or match.group(1) is None:
        return None
    word = match.group(1).lower()
    if word in _ON:
        return True
    if word in _OFF:
        return False
    return None
