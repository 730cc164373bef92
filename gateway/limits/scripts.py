"""The Lua scripts, loaded once per process from the package (the GCRA core is shared by both).

The guard's script carries its configuration as constants (``CONF``, written into the script's text):
a decision sends only what changes per message, half the arguments it would otherwise pack and
send on every call (bench/ratelimit.py). Each configuration is its own script (its own SHA).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources

__all__ = ["guard_script", "ratelimit_script"]


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


@cache
def ratelimit_script() -> str:
    return _read("gcra.lua") + "\n" + _read("ratelimit.lua")


def _lua_literal(value: int | str) -> str:
    if isinstance(value, int):
        return str(value)
    level = 0
    while f"]{'=' * level}]" in value:
        level += 1
    return f"[{'=' * level}[{value}]{'=' * level}]"


def guard_script(constants: Sequence[int | str]) -> str:
    """guard.lua with ``CONF`` = ``constants`` (the order guard.lua documents)."""
    return _guard_script(tuple(constants))


@cache
def _guard_script(constants: tuple[int | str, ...]) -> str:
    prelude = "local CONF = {" + ", ".join(_lua_literal(value) for value in constants) + "}\n"
    return prelude + _read("gcra.lua") + "\n" + _read("guard.lua")
