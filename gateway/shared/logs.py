"""Logging set-up of every Patchbay process (gateway, workers, CLI)."""

from __future__ import annotations

import logging

__all__ = ["configure_logging"]


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(processName)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "LiteLLM", "litellm", "httpcore", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
