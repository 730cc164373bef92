"""The patch framework: typed, guarded, switchable enhancement layers over base components.

A patch is one module: a ``PatchConfig`` subclass, the enhancement (which takes that config), a
``PatchSpec``, and ``apply_<name>_patch = make_apply_function(SPEC)``; one entry point of the
``patchbay.patches`` group makes it installed. See docs/patches.md.
"""

from __future__ import annotations

import importlib
from typing import Any

# Exported lazily (PEP 562): a process that only reads switches or stats (the gateway) must not load
# the layer machinery, and importing ``patches.control`` imports this package first.
_EXPORTS = {
    "CallContext": "patches.context",
    "HealthMonitor": "patches.health",
    "HealthState": "patches.health",
    "PatchConfig": "patches.spec",
    "PatchLayer": "patches.layer",
    "PatchOrderError": "patches.registry",
    "PatchRegistry": "patches.registry",
    "PatchRuntime": "patches.runtime",
    "PatchSpec": "patches.spec",
    "ProcessStats": "patches.metrics",
    "RedisPatchStatsCollector": "patches.metrics",
    "StatsFlusher": "patches.metrics",
    "Switch": "patches.switches",
    "SwitchBoard": "patches.switches",
    "TraceEntry": "patches.context",
    "build_layer": "patches.layer",
    "call_context": "patches.context",
    "check_conformance": "patches.conformance",
    "current_trace": "patches.context",
    "discover": "patches.discovery",
    "make_apply_function": "patches.runtime",
    "stack_of": "patches.layer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'patches' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
