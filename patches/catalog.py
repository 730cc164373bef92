"""Every built-in patch, imported once so that each registers itself in the default registry."""

from __future__ import annotations

import importlib

__all__ = ["BUILTIN_PATCHES", "load_builtin_patches"]

BUILTIN_PATCHES = (
    "patches.llm_resilience",
    "patches.emotion_tone",
    "patches.memory_enhancement",
    "patches.emotion_voice",
)


def load_builtin_patches() -> None:
    for module in BUILTIN_PATCHES:
        importlib.import_module(module)
