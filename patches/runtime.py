"""One ``PatchRuntime`` per process: the switches, health and counters every layer it builds reports to.

Nothing here exists until the application makes it, and nothing registers itself at import:
``start(redis_url)`` begins polling the runtime switches, flushing counters and health to Redis,
and exports the counters to Prometheus; ``stop()`` undoes all three. A runtime that is never
started still works: its layers follow their config, and keep their own counts.

``apply`` proves a patch before it wraps (config loads, dependencies present, prerequisite met,
the component below and the enhancement both conform to the interface, the smoke check passes);
any failure returns the component unchanged, with the reason logged and kept for ``patches
list``. It never raises. A patch that passes is always wrapped, even when switched off by config:
``enabled`` is decided per call, so it can be switched on at runtime without a restart.

``build_stack`` applies every installed patch to its kind's base, kind by kind in the order the
application declares (a kind's patched component is a dependency of later kinds: the voice patch
gets the patched emotion reader). Ordering errors raise ``PatchOrderError``, at start-up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from prometheus_client import REGISTRY, CollectorRegistry

from patches import control
from patches.conformance import check_conformance
from patches.health import HealthMonitor
from patches.layer import PatchLayer, below_handle, stack_of, wrap
from patches.metrics import ProcessPatchCollector, ProcessStats, StatsFlusher
from patches.registry import PatchRegistry
from patches.spec import PatchConfig, PatchSpec
from patches.switches import SwitchBoard

__all__ = ["PatchRuntime", "Refusal", "make_apply_function"]

log = logging.getLogger(__name__)

T = TypeVar("T")

SMOKE_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Refusal:
    patch: str
    reason: str
    at: float  # epoch seconds


class _Refused(Exception):
    """Internal: ``apply`` refuses, with this reason."""


class PatchRuntime:
    def __init__(
        self,
        switches: SwitchBoard | None = None,
        health: HealthMonitor | None = None,
        stats: ProcessStats | None = None,
    ) -> None:
        self.switches = switches if switches is not None else SwitchBoard()
        self.health = health if health is not None else HealthMonitor()
        self.stats = stats if stats is not None else ProcessStats()
        self.refusals: dict[str, Refusal] = {}  # the latest refusal per patch, cleared when it applies
        self.applied: dict[str, PatchLayer] = {}  # the layer of each applied patch
        self.stacks: dict[str, list[str]] = {}  # kind -> its stack, top first, as built by build_stack
        self._enhancements: list[Any] = []  # every enhancement built and kept, closed by aclose()
        self._flusher: StatsFlusher | None = None
        self._collector: tuple[CollectorRegistry, ProcessPatchCollector] | None = None

    # ------------------------------------------------------------------ life cycle

    def start(
        self,
        redis_url: str,
        *,
        poll_interval_s: float = 0.5,
        flush_interval_s: float = 1.0,
        prometheus: CollectorRegistry | None = REGISTRY,
    ) -> None:
        """Join the cluster's control plane: switches polled, counters and health flushed, metrics exported."""
        self.switches.start_background_thread(redis_url, poll_interval_s)
        self._flusher = StatsFlusher(redis_url, self.stats, self.health, interval_s=flush_interval_s)
        self._flusher.start_background_thread()
        if prometheus is not None:
            collector = ProcessPatchCollector(self.stats)
            prometheus.register(collector)
            self._collector = (prometheus, collector)

    def stop(self) -> None:
        """Stop the background threads (the flusher writes what it still holds) and the metrics export."""
        if self._flusher is not None:
            self._flusher.stop()
            self._flusher = None
        self.switches.stop()
        if self._collector is not None:
            registry, collector = self._collector
            registry.unregister(collector)
            self._collector = None

    async def aclose(self) -> None:
        """Close every enhancement this runtime built that has an ``aclose``, whatever its kind."""
        enhancements, self._enhancements = self._enhancements, []
        for enhancement in reversed(enhancements):
            await _close(enhancement)

    # ------------------------------------------------------------------ applying one patch

    def _refuse(self, spec: PatchSpec, component: T, reason: str) -> T:
        if component is None:
            log.warning("patch %s not applied: %s", spec.name, reason)
        else:
            log.warning("patch %s not applied, keeping %s: %s", spec.name, type(component).__name__, reason)
        self.refusals[spec.name] = Refusal(spec.name, reason, time.time())
        self.applied.pop(spec.name, None)
        return component

    async def apply(
        self, spec: PatchSpec, component: T, config: PatchConfig | None = None, deps: Mapping[str, Any] | None = None
    ) -> T:
        """The enhanced component, or ``component`` unchanged with the reason logged and kept. Never raises."""
        enhancement: Any = None
        try:
            if config is None:
                config = spec.load_config()
            elif not isinstance(config, spec.config_cls):
                raise _Refused(f"config is a {type(config).__name__}, not a {spec.config_cls.__name__}")
            available = dict(deps or {})
            missing = [name for name in spec.deps if available.get(name) is None]
            if missing:
                raise _Refused(f"missing dependencies: {', '.join(missing)}")
            if spec.prerequisite is not None and (reason := spec.prerequisite(config, available)) is not None:
                raise _Refused(f"prerequisite not met: {reason}")
            if problems := check_conformance(component, spec.interface):
                raise _Refused(
                    f"the component below does not implement {spec.interface.__name__}: {'; '.join(problems)}"
                )
            handle = below_handle(spec.interface, component)
            enhancement = spec.factory(handle, config, available)
            if problems := check_conformance(enhancement, spec.interface, spec.enhances):
                raise _Refused(f"the enhancement does not implement {spec.interface.__name__}: {'; '.join(problems)}")
            if spec.smoke is not None:
                await _smoke(spec, enhancement, config)
            layer: Any = wrap(spec, config, component, handle, enhancement, self)
        except Exception as exc:  # never raise: the base always works
            if enhancement is not None:
                await _close(enhancement)
            reason = (
                str(exc) if isinstance(exc, _Refused) else f"applying {spec.name} raised {type(exc).__name__}: {exc}"
            )
            return self._refuse(spec, component, reason)
        self.refusals.pop(spec.name, None)
        self.applied[spec.name] = layer
        self._enhancements.append(enhancement)
        state = "enabled" if config.enabled else "switched off by config (can be switched on at runtime)"
        log.info("patch %s applied over %s: %s, rollout %s%%", spec.name, type(component).__name__, state,
                 config.rollout_percent)  # fmt: skip
        result: T = layer
        return result

    # ------------------------------------------------------------------ applying every patch

    async def build_stack(
        self,
        registry: PatchRegistry,
        base: Mapping[str, Any],
        *,
        kinds: Sequence[str],
        later: Mapping[str, Callable[[Mapping[str, Any]], Any]] | None = None,
        deps: Mapping[str, Any] | None = None,
        configs: Mapping[str, PatchConfig] | None = None,
    ) -> dict[str, Any]:
        """Every installed patch over its kind's base, kinds in the order given. Raises only ``PatchOrderError``.

        ``base`` holds the application's base components by kind; ``later`` builds a kind's base
        from the kinds already patched (the handler needs the patched LLM and memory). A patch's
        ``deps`` are looked up in ``deps``, then among the patched components of earlier kinds.
        """
        kinds = tuple(kinds)
        registry.check(kinds)
        for spec in registry.specs():
            if spec.kind not in kinds:
                self._refuse(
                    spec, None, f"{spec.kind!r} is not a component kind of this application ({', '.join(kinds)})"
                )
        stack: dict[str, Any] = {}
        for kind in kinds:
            component = base.get(kind)
            if component is None and later is not None and kind in later:
                component = later[kind](dict(stack))
            specs = registry.ordered(kind)
            if component is None:
                for spec in specs:
                    self._refuse(spec, None, f"no base {kind} component in this stack")
                continue
            for spec in specs:
                unmet = self._unmet_requirement(registry, spec)
                if unmet is not None:
                    self._refuse(spec, component, unmet)
                    continue
                available = dict(stack) | dict(deps or {})
                component = await self.apply(spec, component, (configs or {}).get(spec.name), available)
            stack[kind] = component
            self.stacks[kind] = stack_of(component)
            log.info("stack %s: %s", kind, " → ".join(self.stacks[kind]))
        return stack

    def _unmet_requirement(self, registry: PatchRegistry, spec: PatchSpec) -> str | None:
        for name in spec.requires:
            if name in self.applied:
                continue
            if name in registry.broken:
                return f"requires {name!r}, which is installed but broken: {registry.broken[name].reason}"
            if name in self.refusals:
                return f"requires {name!r}, which was not applied: {self.refusals[name].reason}"
            return f"requires {name!r}, which is not applied yet (a requirement must be of the same or an earlier kind)"
        return None

    # ------------------------------------------------------------------ telling the cluster

    def describe(self, registry: PatchRegistry) -> list[dict[str, Any]]:
        """What ``publish`` writes: one entry per installed patch, broken ones included."""
        entries: list[dict[str, Any]] = []
        for spec in registry.specs():
            entry: dict[str, Any] = {"name": spec.name, "kind": spec.kind, "description": spec.description}
            layer = self.applied.get(spec.name)
            try:
                config = layer.config if layer is not None else spec.load_config()
                entry |= {"config_enabled": config.enabled, "config_rollout_percent": config.rollout_percent}
            except Exception as exc:  # a broken config is shown, not fatal to listing
                entry |= {"config_enabled": False, "config_rollout_percent": 0.0, "config_error": str(exc)}
            refusal = self.refusals.get(spec.name)
            stack = self.stacks.get(spec.kind, [])
            position = len(stack) - 1 - stack.index(spec.name) if spec.name in stack else None
            entry |= {
                "refused": refusal is not None,
                "refusal_reason": refusal.reason if refusal else "",
                "broken": False,
                "position": position,
            }
            entries.append(entry)
        for broken in registry.broken.values():
            entries.append(
                {
                    "name": broken.name,
                    "kind": "?",
                    "description": broken.source,
                    "config_enabled": False,
                    "config_rollout_percent": 0.0,
                    "refused": True,
                    "refusal_reason": f"broken: {broken.reason}",
                    "broken": True,
                    "position": None,
                }
            )
        return entries

    def publish(self, client: redis.Redis, registry: PatchRegistry) -> None:
        """Tell Redis what this process installed, applied and refused (call after ``build_stack``)."""
        control.publish(client, self.describe(registry), self.stacks)


async def _smoke(spec: PatchSpec, enhancement: Any, config: PatchConfig) -> None:
    assert spec.smoke is not None
    budget = max(SMOKE_TIMEOUT_S, (config.timeout_s or 0) * 3)
    try:
        async with asyncio.timeout(budget):
            await spec.smoke(enhancement)
    except TimeoutError:
        raise _Refused(f"smoke check did not finish within {budget}s") from None
    except Exception as exc:
        raise _Refused(f"smoke check failed: {type(exc).__name__}: {exc}") from None


async def _close(enhancement: Any) -> None:
    close = getattr(enhancement, "aclose", None)
    if close is None:
        return
    try:
        await close()
    except Exception as exc:  # shutting down: report and go on closing the rest
        log.warning("closing %r failed: %r", enhancement, exc)


def make_apply_function(spec: PatchSpec) -> Callable[..., Any]:
    """``apply_<name>_patch(component, config=None, *, runtime=None, **deps)`` for a patch module to export.

    Awaitable; returns the enhanced component, or ``component`` unchanged (the reason logged).
    Never raises. Without ``runtime`` the layer gets a runtime of its own, which follows the
    config only; pass the process's started runtime to get its switches, health and counters.
    """

    async def apply(component: T, config: PatchConfig | None = None, *, runtime: PatchRuntime | None = None,
                    **deps: Any) -> T:  # fmt: skip
        return await (runtime if runtime is not None else PatchRuntime()).apply(spec, component, config, deps)

    apply.__name__ = apply.__qualname__ = f"apply_{spec.name}_patch"
    apply.__doc__ = f"Apply the {spec.name} patch to ``component``; returns it unchanged if it cannot. Never raises."
    return apply
