"""The patch framework: typed, guarded, switchable enhancement layers over base components.

A patch module declares a ``PatchConfig`` subclass and a ``PatchSpec``, registers it with
``register_patch`` and exports ``apply_<name>_patch = make_apply_function(SPEC)``. See docs/patches.md.
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
    "PatchSpec": "patches.spec",
    "ProcessStats": "patches.metrics",
    "RedisPatchStatsCollector": "patches.metrics",
    "StatsFlusher": "patches.metrics",
    "Switch": "patches.switches",
    "SwitchBoard": "patches.switches",
    "TraceEntry": "patches.context",
    "apply_patch": "patches.registry",
    "apply_patch_async": "patches.registry",
    "build_layer": "patches.layer",
    "build_stack": "patches.registry",
    "build_stack_async": "patches.registry",
    "call_context": "patches.context",
    "check_conformance": "patches.conformance",
    "current_call": "patches.context",
    "current_trace": "patches.context",
    "default_registry": "patches.registry",
    "make_apply_function": "patches.registry",
    "process_health": "patches.health",
    "process_stats": "patches.metrics",
    "process_switchboard": "patches.switches",
    "register_patch": "patches.registry",
    "stack_of": "patches.layer",
}

__all__ = [
    "CallContext",
    "HealthMonitor",
    "HealthState",
    "PatchConfig",
    "PatchLayer",
    "PatchOrderError",
    "PatchRegistry",
    "PatchSpec",
    "ProcessStats",
    "RedisPatchStatsCollector",
    "StatsFlusher",
    "Switch",
    "SwitchBoard",
    "TraceEntry",
    "apply_patch",
    "apply_patch_async",
    "build_layer",
    "build_stack",
    "build_stack_async",
    "call_context",
    "check_conformance",
    "current_call",
    "current_trace",
    "default_registry",
    "make_apply_function",
    "process_health",
    "process_stats",
    "process_switchboard",
    "register_patch",
    "stack_of",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'patches' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
