"""The Lua scripts, loaded once per process from the package (the GCRA core is shared by both)."""

from __future__ import annotations

from functools import cache
from importlib import resources

__all__ = ["guard_script", "ratelimit_script"]


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


@cache
def ratelimit_script() -> str:
    return _read("gcra.lua") + "\n" + _read("ratelimit.lua")


@cache
def guard_script() -> str:
    return _read("gcra.lua") + "\n" + _read("guard.lua")
