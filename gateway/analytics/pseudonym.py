"""Keyed pseudonyms: HMAC-SHA256 of user, conversation and message ids.

The database never stores a raw platform id, only these pseudonyms. They still join (the same id
always maps to the same pseudonym), so engagement, returning users and reaction→reply links work,
while a leaked export or database reveals nobody's Discord/Telegram/Slack id. Deleting a user's
data stays possible: whoever holds the key computes the user's pseudonym and deletes by it.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from gateway.shared.files import load_or_create_secret

__all__ = ["Pseudonymiser", "load_or_create_key"]


def load_or_create_key(configured: str | None, data_dir: Path) -> bytes:
    """``PATCHBAY_ANALYTICS_KEY`` if set; else ``<data_dir>/analytics.key``, created (0600) on first use.

    The key must outlive restarts: a new key would make yesterday's users look like new users.
    """
    return load_or_create_secret(configured, data_dir / "analytics.key", purpose="analytics pseudonym key")


class Pseudonymiser:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def __call__(self, value: str | None) -> str | None:
        if value is None or value == "":
            return value
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:24]
