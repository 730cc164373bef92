"""The patch framework: typed, guarded, switchable enhancement layers over base components.

A patch module declares a ``PatchConfig`` subclass and a ``PatchSpec``, registers it with
``register_patch`` and exports ``apply_<name>_patch = make_apply_function(SPEC)``. See docs/patches.md.
"""

from patches.conformance import check_conformance
from patches.context import CallContext, TraceEntry, call_context, current_call, current_trace
from patches.health import HealthMonitor, HealthState, process_health
from patches.layer import PatchLayer, build_layer, stack_of
from patches.metrics import ProcessStats, RedisPatchStatsCollector, StatsFlusher, process_stats
from patches.registry import (
    PatchOrderError,
    PatchRegistry,
    apply_patch,
    apply_patch_async,
    build_stack,
    build_stack_async,
    default_registry,
    make_apply_function,
    register_patch,
)
from patches.spec import PatchConfig, PatchSpec
from patches.switches import Switch, SwitchBoard, process_switchboard

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
