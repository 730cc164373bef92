"""What user-supplied strings may contain, decided once for the edge, the envelope, memory and the logs.

- **ids** (user, conversation, message, bot): never a control character (a newline in an id forged
  log lines); the edge refuses them (422) rather than guessing what was meant.
- **display names**: one line of text. Control characters, line/paragraph separators and bidi
  overrides become spaces, so "alice\\nSYSTEM: ..." can never look like a new line of a prompt.
- **message text**: newlines and tabs are fine; NUL and the other C0 controls are not (PostgreSQL
  refuses NUL in text, SQLite keeps it: stripping them everywhere keeps both backends identical),
  and an unpaired UTF-16 surrogate (valid in JSON, not encodable in UTF-8) becomes U+FFFD.
- **log values**: control characters are escaped (``\\n``), so one log record is one line.
"""

from __future__ import annotations

import re

__all__ = [
    "clean_display_name",
    "clean_text",
    "control_characters",
    "escape_for_log",
    "has_unpaired_surrogate",
]

# C0 and C1 controls, DEL, line/paragraph separators, and the bidi embedding/override/isolate marks.
_ID_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_TEXT_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SPACES = re.compile(r"\s+")
_LOG_ESCAPES = {
    **{code: f"\\x{code:02x}" for code in [*range(0x20), *range(0x7F, 0xA0)]},
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def control_characters(value: str) -> list[str]:
    """The forbidden characters of an id, spelled for an error message (``['\\\\n']``); [] when clean."""
    return sorted({repr(match)[1:-1] for match in _ID_FORBIDDEN.findall(value)})


def has_unpaired_surrogate(value: str) -> bool:
    return _SURROGATE.search(value) is not None


def clean_display_name(value: str) -> str:
    """One line: every control/separator/bidi mark becomes a space, whitespace collapses, ends are trimmed."""
    value = _SURROGATE.sub("\ufffd", value)
    return _SPACES.sub(" ", _ID_FORBIDDEN.sub(" ", value)).strip()


def clean_text(value: str) -> str:
    """Message text as every store accepts it: NUL and other C0 controls (but tab/newline) removed, surrogates replaced."""
    if _TEXT_FORBIDDEN.search(value):
        value = _TEXT_FORBIDDEN.sub("", value)
    if _SURROGATE.search(value):
        value = _SURROGATE.sub("\ufffd", value)
    return value


def escape_for_log(value: str) -> str:
    """``value`` with control characters escaped: a user-supplied value can never start a new log line."""
    return value.translate(_LOG_ESCAPES)
