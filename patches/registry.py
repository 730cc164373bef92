"""Which patches exist, in which order they stack, and applying them without ever breaking the base.

``apply_patch`` proves a patch before it wraps (config loads, dependencies present, prerequisite
met, the component below and the enhancement both conform to the interface, the smoke check
passes); any failure returns the component unchanged with the reason logged and recorded, so
``patches list`` can show it. A patch that passes is always wrapped, even when switched off by
config: ``enabled`` is decided per call, so it can be switched on at runtime without a restart.

Ordering errors (a cycle, a missing requirement) are configuration errors and do raise: at
start-up, from ``PatchRegistry.ordered`` / ``build_stack``, never lazily.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from patches.conformance import check_conformance
from patches.health import HealthMonitor
from patches.layer import build_layer
from patches.metrics import ProcessStats
from patches.spec import PatchConfig, PatchSpec
from patches.switches import SwitchBoard
from workers.components import ComponentKind

__all__ = [
    "KIND_ORDER",
    "PatchOrderError",
    "PatchRegistry",
    "Refusal",
    "apply_patch",
    "apply_patch_async",
    "build_stack",
    "build_stack_async",
    "default_registry",
    "make_apply_function",
    "register_patch",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Kinds other kinds depend on come first, so e.g. the voice patch gets the (patched) emotion reader.
KIND_ORDER: tuple[ComponentKind, ...] = (
    ComponentKind.EMOTION,
    ComponentKind.MEMORY,
    ComponentKind.LLM,
    ComponentKind.VOICE,
    ComponentKind.HANDLER,
)
SMOKE_TIMEOUT_S = 30.0


class PatchOrderError(Exception):
    """The registered patches cannot be ordered: a cycle, or a requirement nobody registered."""


@dataclass(frozen=True, slots=True)
class Refusal:
    patch: str
    reason: str
    at: float  # epoch seconds


class PatchRegistry:
    def __init__(self) -> None:
        self._specs: dict[str, PatchSpec] = {}
        self.refusals: dict[str, Refusal] = {}  # the latest apply refusal per patch, cleared when it applies
        self.applied_configs: dict[str, PatchConfig] = {}  # the config each applied patch runs with
        self._lock = threading.Lock()

    def register(self, spec: PatchSpec) -> PatchSpec:
        with self._lock:
            if spec.name in self._specs:
                raise ValueError(f"a patch named {spec.name!r} is already registered")
            self._specs[spec.name] = spec
        return spec

    def get(self, name: str) -> PatchSpec | None:
        return self._specs.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def specs(self) -> list[PatchSpec]:
        return list(self._specs.values())

    def check(self) -> None:
        """Raise ``PatchOrderError`` if any kind's patches cannot be ordered."""
        for kind in ComponentKind:
            self.ordered(kind)

    def ordered(self, kind: ComponentKind) -> list[PatchSpec]:
        """The patches of ``kind`` from the bottom of the stack up (the first is applied first)."""
        for spec in self._specs.values():
            missing = [name for name in spec.requires if name not in self._specs]
            if missing:
                raise PatchOrderError(
                    f"patch {spec.name!r} requires {', '.join(repr(m) for m in missing)}, which is not registered"
                )
        members = {name: spec for name, spec in self._specs.items() if spec.kind is kind}
        below: dict[str, set[str]] = {name: set() for name in members}  # name -> patches that must sit below it
        for name, spec in members.items():
            below[name].update(required for required in spec.requires if required in members)
            for upper in spec.before:
                if upper in members:
                    below[upper].add(name)
        # Kahn's algorithm; ties keep registration order so the stack is deterministic.
        placed: list[PatchSpec] = []
        remaining = dict(below)
        while remaining:
            ready = [name for name, deps in remaining.items() if not deps]
            if not ready:
                raise PatchOrderError(f"patch order cycle among {kind.value} patches: {_find_cycle(remaining)}")
            for name in ready:
                placed.append(members[name])
                del remaining[name]
            for deps in remaining.values():
                deps.difference_update(ready)
        return placed

    # ------------------------------------------------------------------ applying

    def _refuse(self, spec: PatchSpec, component: T, reason: str) -> T:
        log.warning("patch %s not applied, keeping %s: %s", spec.name, type(component).__name__, reason)
        self.refusals[spec.name] = Refusal(spec.name, reason, time.time())
        return component

    def _prepare(
        self,
        spec: PatchSpec,
        component: Any,
        config: PatchConfig | None,
        deps: Mapping[str, Any] | None,
    ) -> tuple[PatchConfig, dict[str, Any], Any] | str:
        """Everything before the smoke check: the (config, deps, enhancement), or why the patch is refused."""
        if config is None:
            config = spec.load_config()
        elif not isinstance(config, spec.config_cls):
            return f"config is a {type(config).__name__}, not a {spec.config_cls.__name__}"
        available = dict(deps or {})
        missing = [name for name in spec.deps if available.get(name) is None]
        if missing:
            return f"missing dependencies: {', '.join(missing)}"
        if spec.prerequisite is not None:
            reason = spec.prerequisite(config, available)
            if reason is not None:
                return f"prerequisite not met: {reason}"
        problems = check_conformance(component, spec.interface)
        if problems:
            return f"the component below does not implement {spec.interface.__name__}: {'; '.join(problems)}"
        enhancement = spec.layer_factory(component, config, available)
        problems = check_conformance(enhancement, spec.interface, spec.enhances)
        if problems:
            return f"the enhancement does not implement {spec.interface.__name__}: {'; '.join(problems)}"
        return config, available, enhancement

    def _finish(
        self,
        spec: PatchSpec,
        component: Any,
        config: PatchConfig,
        enhancement: Any,
        switches: SwitchBoard | None,
        health: HealthMonitor | None,
        stats: ProcessStats | None,
    ) -> Any:
        layer = build_layer(spec, config, component, enhancement, switches=switches, health=health, stats=stats)
        self.refusals.pop(spec.name, None)
        self.applied_configs[spec.name] = config
        state = "enabled" if config.enabled else "switched off by config (can be switched on at runtime)"
        log.info("patch %s applied over %s: %s, rollout %s%%", spec.name, type(component).__name__, state,
                 config.rollout_percent)  # fmt: skip
        return layer

    async def apply_async(
        self,
        spec: PatchSpec,
        component: T,
        config: PatchConfig | None = None,
        deps: Mapping[str, Any] | None = None,
        switches: SwitchBoard | None = None,
        health: HealthMonitor | None = None,
        stats: ProcessStats | None = None,
    ) -> T:
        """Apply one patch, running its smoke check on the caller's event loop. Never raises."""
        try:
            prepared = self._prepare(spec, component, config, deps)
            if isinstance(prepared, str):
                return self._refuse(spec, component, prepared)
            loaded, _, enhancement = prepared
            if spec.smoke is not None:
                async with asyncio.timeout(_smoke_budget(loaded)):
                    await spec.smoke(enhancement)
            layer: T = self._finish(spec, component, loaded, enhancement, switches, health, stats)
            return layer
        except TimeoutError:
            return self._refuse(spec, component, f"smoke check did not finish within {_smoke_budget(config)}s")
        except Exception as exc:  # never raise: the base always works
            return self._refuse(spec, component, _failure(spec, exc))

    def apply(
        self,
        spec: PatchSpec,
        component: T,
        config: PatchConfig | None = None,
        deps: Mapping[str, Any] | None = None,
        switches: SwitchBoard | None = None,
        health: HealthMonitor | None = None,
        stats: ProcessStats | None = None,
    ) -> T:
        """Apply one patch from sync code. Never raises.

        The smoke check runs on a private event loop in a helper thread, which works whether or not
        the caller has a loop running; an enhancement holding loop-bound resources (connection
        pools) should be applied with ``apply_async`` on the loop that will use it.
        """
        try:
            prepared = self._prepare(spec, component, config, deps)
            if isinstance(prepared, str):
                return self._refuse(spec, component, prepared)
            loaded, _, enhancement = prepared
            if spec.smoke is not None:
                smoke_error = _run_smoke_in_thread(spec, enhancement, _smoke_budget(loaded))
                if smoke_error is not None:
                    return self._refuse(spec, component, smoke_error)
            layer: T = self._finish(spec, component, loaded, enhancement, switches, health, stats)
            return layer
        except Exception as exc:  # never raise: the base always works
            return self._refuse(spec, component, _failure(spec, exc))

    def _stack_plan(self, base: Mapping[ComponentKind, Any]) -> list[tuple[ComponentKind, list[PatchSpec]]]:
        self.check()
        for spec in self._specs.values():
            if spec.kind not in base:
                self.refusals[spec.name] = Refusal(spec.name, f"no base {spec.kind.value} component", time.time())
                log.warning("patch %s not applied: no base %s component in this stack", spec.name, spec.kind.value)
        kinds = [kind for kind in KIND_ORDER if kind in base] + [kind for kind in base if kind not in KIND_ORDER]
        return [(kind, self.ordered(kind)) for kind in kinds]

    def build_stack(
        self,
        base: Mapping[ComponentKind, Any],
        *,
        configs: Mapping[str, PatchConfig] | None = None,
        deps: Mapping[str, Any] | None = None,
        switches: SwitchBoard | None = None,
        health: HealthMonitor | None = None,
        stats: ProcessStats | None = None,
    ) -> dict[ComponentKind, Any]:
        """Apply every registered patch to its kind's base, in order. Raises only ``PatchOrderError``.

        A patch's ``deps`` are looked up in ``deps`` and then among the stack's components by kind
        value ("emotion", "memory"...), already patched when their kind comes earlier in ``KIND_ORDER``.
        """
        stack = dict(base)
        for kind, specs in self._stack_plan(base):
            for spec in specs:
                available = {k.value: component for k, component in stack.items()} | dict(deps or {})
                config = (configs or {}).get(spec.name)
                stack[kind] = self.apply(spec, stack[kind], config, available, switches, health, stats)
        return stack

    async def build_stack_async(
        self,
        base: Mapping[ComponentKind, Any],
        *,
        configs: Mapping[str, PatchConfig] | None = None,
        deps: Mapping[str, Any] | None = None,
        switches: SwitchBoard | None = None,
        health: HealthMonitor | None = None,
        stats: ProcessStats | None = None,
    ) -> dict[ComponentKind, Any]:
        """``build_stack`` with the smoke checks on the caller's loop (what a worker should use)."""
        stack = dict(base)
        for kind, specs in self._stack_plan(base):
            for spec in specs:
                available = {k.value: component for k, component in stack.items()} | dict(deps or {})
                config = (configs or {}).get(spec.name)
                stack[kind] = await self.apply_async(spec, stack[kind], config, available, switches, health, stats)
        return stack


def _find_cycle(graph: Mapping[str, set[str]]) -> str:
    """One cycle in ``graph`` (name -> names it waits for), spelled "a -> b -> a"."""
    start = next(iter(graph))
    path: list[str] = []
    seen: dict[str, int] = {}
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = sorted(graph[node] & graph.keys())[0]  # every node left in Kahn's remainder waits on another
    cycle = [*path[seen[node] :], node]
    return " -> ".join(reversed(cycle)) + "  (each sits below the next)"


def _smoke_budget(config: PatchConfig | None) -> float:
    return max(SMOKE_TIMEOUT_S, (config.timeout_s or 0) * 3) if config is not None else SMOKE_TIMEOUT_S


def _failure(spec: PatchSpec, exc: BaseException) -> str:
    return f"applying {spec.name} raised {type(exc).__name__}: {exc}"


def _run_smoke_in_thread(spec: PatchSpec, enhancement: Any, budget_s: float) -> str | None:
    outcome: list[str | None] = []

    async def smoke() -> None:
        assert spec.smoke is not None
        async with asyncio.timeout(budget_s):
            await spec.smoke(enhancement)

    def run() -> None:
        try:
            asyncio.run(smoke())
            outcome.append(None)
        except TimeoutError:
            outcome.append(f"smoke check did not finish within {budget_s}s")
        except Exception as exc:
            outcome.append(f"smoke check failed: {type(exc).__name__}: {exc}")

    thread = threading.Thread(target=run, name=f"smoke-{spec.name}", daemon=True)
    thread.start()
    thread.join()
    return outcome[0] if outcome else "smoke check thread died without an outcome"


# ---------------------------------------------------------------------- the process's default registry

default_registry = PatchRegistry()


def register_patch(spec: PatchSpec, registry: PatchRegistry | None = None) -> PatchSpec:
    """Register ``spec`` (in the default registry unless told otherwise); patch modules call it at import."""
    return (registry if registry is not None else default_registry).register(spec)


def apply_patch(
    spec: PatchSpec,
    component: T,
    config: PatchConfig | None = None,
    deps: Mapping[str, Any] | None = None,
    switches: SwitchBoard | None = None,
    health: HealthMonitor | None = None,
    *,
    registry: PatchRegistry | None = None,
    stats: ProcessStats | None = None,
) -> T:
    """The enhanced component, or ``component`` unchanged with the reason logged. Never raises."""
    target = registry if registry is not None else default_registry
    return target.apply(spec, component, config, deps, switches, health, stats)


async def apply_patch_async(
    spec: PatchSpec,
    component: T,
    config: PatchConfig | None = None,
    deps: Mapping[str, Any] | None = None,
    switches: SwitchBoard | None = None,
    health: HealthMonitor | None = None,
    *,
    registry: PatchRegistry | None = None,
    stats: ProcessStats | None = None,
) -> T:
    target = registry if registry is not None else default_registry
    return await target.apply_async(spec, component, config, deps, switches, health, stats)


def build_stack(
    base: Mapping[ComponentKind, Any], registry: PatchRegistry | None = None, **options: Any
) -> dict[ComponentKind, Any]:
    return (registry if registry is not None else default_registry).build_stack(base, **options)


async def build_stack_async(
    base: Mapping[ComponentKind, Any], registry: PatchRegistry | None = None, **options: Any
) -> dict[ComponentKind, Any]:
    return await (registry if registry is not None else default_registry).build_stack_async(base, **options)


def make_apply_function(spec: PatchSpec, registry: PatchRegistry | None = None) -> Callable[..., Any]:
    """The seed-style ``apply_<name>_patch(component, config=None, **deps)`` for a patch module to export."""

    def apply(component: T, config: PatchConfig | None = None, **deps: Any) -> T:
        return apply_patch(spec, component, config, deps, registry=registry)

    apply.__name__ = apply.__qualname__ = f"apply_{spec.name}_patch"
    apply.__doc__ = f"Apply the {spec.name} patch to ``component``; returns it unchanged if it cannot. Never raises."
    return apply
