"""Logging set-up of every Patchbay process (gateway, workers, CLI), with two last lines of defence.

- **Secrets are redacted**: every configured token, key and password (bot tokens, signing secrets,
  API keys, the admin token, passwords inside ``REDIS_URL``/``DATABASE_URL``) is replaced by
  ``[redacted]`` in every log record, its exception text included, whichever library logs it.
  Code must still never log a secret; this catches what slips through (an HTTP error's repr with
  a Telegram file URL in it, a library's debug line).
- **One record is one line**: control characters in the *arguments* of a record (user ids, names,
  keys — anything interpolated with ``%s``) are escaped, so a newline in a user-supplied value
  cannot forge a log line.

Both run in a log record factory, so they apply to records of every logger and reach every
handler, including handlers that libraries (uvicorn, Celery) install after us. ``redact`` is also
used for text that leaves the process another way (``/healthz`` details, analytics events).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from gateway.shared.config import load_toml
from gateway.shared.hygiene import escape_for_log

__all__ = ["REDACTED", "configure_logging", "redact", "register_secret", "secrets_in_config"]

REDACTED = "[redacted]"
_MIN_SECRET_CHARS = 6  # shorter values would redact ordinary words; no real token is this short

# Environment variables (and patchbay.toml keys) whose value is a secret, by name.
_SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_KEYS?|_KEY)$", re.IGNORECASE)
_URL_NAME = re.compile(r"(_URL|_URI)$", re.IGNORECASE)
_TOML_SECRET_KEY = re.compile(r"(token|secret|password|api_keys?|_key|^key)$", re.IGNORECASE)

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def _url_password(value: str) -> str | None:
    try:
        return urlsplit(value).password
    except ValueError:
        return None


def _split(value: str) -> list[str]:
    # PATCHBAY_WEBCHAT_API_KEYS and the like hold several comma-separated secrets.
    return [part.strip() for part in value.split(",")] if "," in value else [value]


def secrets_in_config(environ: dict[str, str] | None = None, toml: dict[str, Any] | None = None) -> set[str]:
    """Every secret value named by the environment and ``patchbay.toml``."""
    environ = dict(os.environ) if environ is None else environ
    found: set[str] = set()
    for name, value in environ.items():
        if _SECRET_NAME.search(name):
            found.update(_split(value))
        elif _URL_NAME.search(name) and (password := _url_password(value)):
            found.add(password)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str) and _TOML_SECRET_KEY.search(str(key)):
                    found.update(_split(value))
                elif isinstance(value, str) and (password := _url_password(value)):
                    found.add(password)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(load_toml() if toml is None else toml)
    return {value for value in found if len(value) >= _MIN_SECRET_CHARS}


def register_secret(*values: str | None) -> None:
    """Redact these values from now on (a token generated at run time, a key read from a file)."""
    global _pattern
    fresh = {v for v in values if v and len(v) >= _MIN_SECRET_CHARS}
    with _lock:
        if fresh <= _secrets:
            return
        _secrets.update(fresh)
        # Longest first, so a secret that contains another is replaced whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(value) for value in ordered))


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``[redacted]``."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(REDACTED, text)


class _Safe:
    """A log argument shown redacted and, as ``%s``, with its control characters escaped.

    Arguments stay arguments (formatters such as uvicorn's access log read ``record.args``), but
    whatever they print — an exception's message, a URL object — passes ``redact`` first.
    """

    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        self._value = value

    def __str__(self) -> str:
        return redact(escape_for_log(str(self._value)))

    def __repr__(self) -> str:
        return redact(repr(self._value))

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def _safe(value: Any) -> Any:
    # Numbers keep their type (``%d``, ``%.1f``); everything else prints through _Safe.
    if value is None or isinstance(value, bool | int | float):
        return value
    return _Safe(value)


def _clean_args(args: Any) -> Any:
    if isinstance(args, tuple):
        return tuple(_safe(value) for value in args)
    if isinstance(args, dict):
        return {key: _safe(value) for key, value in args.items()}
    return _safe(args)


_installed = False


def _install_record_factory() -> None:
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _pattern is None and not record.args:
            return record
        record.msg = redact(record.msg) if isinstance(record.msg, str) else _safe(record.msg)
        if record.args:
            record.args = _clean_args(record.args)
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


def configure_logging(level: str, *, extra_secrets: Iterable[str] = ()) -> None:
    register_secret(*secrets_in_config(), *extra_secrets)
    _install_record_factory()
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(processName)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "LiteLLM", "litellm", "httpcore", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
