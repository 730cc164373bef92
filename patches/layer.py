"""The guarded layer: the same async interface as the component below, and a fallback on every call.

For each (interface, enhanced methods) pair we generate, once, a class with one real ``async def``
per Protocol method, with the Protocol's exact parameters — no ``__getattr__`` delegation, so the
layer passes the same conformance check as any component and can itself be wrapped again. The
methods are generated from source text (as ``dataclasses`` does) because a ``*args`` forwarder
would not have the interface's signature, and would cost a dict and a tuple on every call.

An enhanced method asks its ``Guard`` whether the enhancement is active for this call (runtime
switch, rollout bucket of the current user, health), runs it under the patch's time budget,
validates the result, and on any failure counts it, logs it, traces it and returns the layer
below's answer instead. The layer below's own exceptions propagate: a layer never hides the base.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from functools import cache
from time import perf_counter
from typing import Any, Final

# The ContextVar itself rather than current_call(): one call less on every guarded call.
from patches.context import APPLIED, FALLBACK, SKIPPED, TraceEntry, _current
from patches.health import HealthMonitor, HealthState, process_health
from patches.metrics import ProcessStats, process_stats
from patches.rollout import bucket
from patches.spec import PatchConfig, PatchSpec, interface_methods
from patches.switches import SwitchBoard, process_switchboard

__all__ = ["Guard", "PatchLayer", "build_layer", "layer_class", "stack_of"]

log = logging.getLogger(__name__)

_OK: Final = HealthState.OK
_SWITCHED_OFF: Final = "switched off"
OUTSIDE_ROLLOUT: Final = "outside rollout"  # analytics tell control-group users by this reason
_AUTO_DISABLED: Final = "auto-disabled"
_NO_KWARGS: Final[dict[str, Any]] = {}


class Guard:
    """Everything one layer's calls need, resolved once at build time so the hot path only looks up."""

    __slots__ = (
        "board",
        "config",
        "config_enabled",
        "config_percent",
        "health",
        "name",
        "stats",
        "timeout_s",
        "validate",
    )

    def __init__(
        self,
        spec: PatchSpec,
        config: PatchConfig,
        board: SwitchBoard,
        health: HealthMonitor,
        stats: ProcessStats,
    ) -> None:
        self.name = spec.name
        self.config = config
        self.config_enabled = config.enabled
        self.config_percent = config.rollout_percent
        self.timeout_s = config.timeout_s
        self.validate = spec.validate
        self.board = board
        self.health = health.track(spec.name, config)
        self.stats = stats.for_patch(spec.name)
        for method in spec.enhances:
            self.stats.calls_by_method.setdefault(method, 0)

    def skip_reason(self, user_id: str | None) -> str | None:
        """None when the enhancement should run for this call, else why not."""
        switch = self.board.table.get(self.name)
        if switch is None:
            enabled, percent = self.config_enabled, self.config_percent
        else:
            enabled = self.config_enabled if switch.enabled is None else switch.enabled
            percent = self.config_percent if switch.rollout_percent is None else switch.rollout_percent
        if not enabled:
            return _SWITCHED_OFF
        if percent < 100.0 and (user_id is None or percent <= 0.0 or bucket(self.name, user_id) > percent):
            return OUTSIDE_ROLLOUT
        # Last, so the one probe call after a cool-down goes to a call that will really run.
        if self.health.state is not _OK and not self.health.allow():
            return _AUTO_DISABLED
        return None

    async def call(
        self,
        method: str,
        enhanced: Callable[..., Any],
        below: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        context = _current.get()
        stats = self.stats
        stats.calls_by_method[method] += 1
        skip = self.skip_reason(context.user_id if context is not None else None)
        if skip is not None:
            stats.skipped += 1
            if context is not None:
                context.trace.append(TraceEntry(self.name, method, SKIPPED, skip, 0.0))
            return await below(*args, **kwargs)

        started = perf_counter()
        try:
            if self.timeout_s is None:
                result = await enhanced(*args, **kwargs)
            else:
                # asyncio.timeout, not wait_for: no extra task per call.
                async with asyncio.timeout(self.timeout_s):
                    result = await enhanced(*args, **kwargs)
            rejection = self.validate(method, result) if self.validate is not None else None
        except TimeoutError:
            failure, detail = "timeout", f"no answer within {self.timeout_s}s"
        except Exception as exc:  # the whole point of a layer: any enhancement failure falls back
            failure, detail = "exception", f"{type(exc).__name__}: {exc}"
        else:
            if rejection is None:
                elapsed = perf_counter() - started
                stats.observe(elapsed)
                self.health.record(True)
                if context is not None:
                    context.trace.append(TraceEntry(self.name, method, APPLIED, "", elapsed * 1000.0))
                return result
            failure, detail = "rejected", rejection

        elapsed = perf_counter() - started
        stats.observe(elapsed)
        stats.errors_by_reason[failure] += 1
        self.health.record(False)
        reason = f"{failure}: {detail}"
        log.warning("fallback patch=%s method=%s reason=%s", self.name, method, reason)
        if context is not None:
            context.trace.append(TraceEntry(self.name, method, FALLBACK, reason, elapsed * 1000.0))
        result = await below(*args, **kwargs)
        stats.fallbacks_by_reason[failure] += 1
        return result


class PatchLayer:
    """Base of every generated layer class: what a layer exposes besides the interface."""

    __slots__ = ("_guard", "below", "config", "enhancement", "spec")

    below: Any
    spec: PatchSpec
    enhancement: Any
    config: PatchConfig
    _guard: Guard

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {' > '.join(stack_of(self))}>"


def stack_of(component: object) -> list[str]:
    """Patch names from the top of a stack down, then the base's class name."""
    names: list[str] = []
    while isinstance(component, PatchLayer):
        names.append(component.spec.name)
        component = component.below
    names.append(type(component).__name__)
    return names


@cache
def layer_class(interface: type, enhances: tuple[str, ...]) -> type[PatchLayer]:
    """The generated layer class for ``interface`` with ``enhances`` guarded (built once, then cached)."""
    methods = interface_methods(interface)
    namespace: dict[str, Any] = {"_NO_KWARGS": _NO_KWARGS}
    sources: list[str] = []
    slots: list[str] = []
    for name, function in methods.items():
        params, defaults, positional, keywords = _parameters(function)
        namespace.update(defaults)
        if name in enhances:
            slots += [f"_enhanced_{name}", f"_below_{name}"]
            kwargs = "{" + ", ".join(f"{k!r}: {k}" for k in keywords) + "}" if keywords else "_NO_KWARGS"
            args = f"({positional},)" if positional else "()"
            body = (
                f"return await self._guard.call({name!r}, self._enhanced_{name}, self._below_{name}, {args}, {kwargs})"
            )
        else:
            call = ", ".join(filter(None, [positional, ", ".join(f"{k}={k}" for k in keywords)]))
            body = f"return await self.below.{name}({call})"
        sources.append(f"async def {name}(self{', ' if params else ''}{params}):\n    {body}\n")
    exec(compile("\n".join(sources), f"<patch layer of {interface.__name__}>", "exec"), namespace)

    class_namespace: dict[str, Any] = {"__slots__": tuple(slots), "__module__": __name__}
    for name, function in methods.items():
        generated = namespace[name]
        generated.__qualname__ = f"{interface.__name__}Layer.{name}"
        generated.__doc__ = function.__doc__
        generated.__annotations__ = dict(getattr(function, "__annotations__", {}))
        class_namespace[name] = generated
    return type(f"{interface.__name__}Layer", (PatchLayer,), class_namespace)


def _parameters(function: Callable[..., Any]) -> tuple[str, dict[str, Any], str, list[str]]:
    """(parameter list text, default values by placeholder, positional forwarding text, keyword names)."""
    parameters = list(inspect.signature(function).parameters.values())[1:]  # drop self
    text: list[str] = []
    defaults: dict[str, Any] = {}
    positional: list[str] = []
    keywords: list[str] = []
    star_written = False
    for index, parameter in enumerate(parameters):
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise TypeError(f"{function.__qualname__}: component interfaces may not take *args or **kwargs")
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and not star_written:
            text.append("*")
            star_written = True
        entry = parameter.name
        if parameter.default is not inspect.Parameter.empty:
            placeholder = f"_default_{index}"
            defaults[placeholder] = parameter.default
            entry += f"={placeholder}"
        text.append(entry)
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            keywords.append(parameter.name)
        else:
            positional.append(parameter.name)
        if parameter.kind is inspect.Parameter.POSITIONAL_ONLY and (
            index + 1 == len(parameters) or parameters[index + 1].kind is not inspect.Parameter.POSITIONAL_ONLY
        ):
            text.append("/")
    return ", ".join(text), defaults, ", ".join(positional), keywords


def build_layer(
    spec: PatchSpec,
    config: PatchConfig,
    below: object,
    enhancement: object,
    *,
    switches: SwitchBoard | None = None,
    health: HealthMonitor | None = None,
    stats: ProcessStats | None = None,
) -> Any:
    """Wrap ``below`` in a guarded layer of ``spec``; conformance is the caller's job (see registry.apply_patch)."""
    cls = layer_class(spec.interface, tuple(sorted(spec.enhances)))
    layer = cls.__new__(cls)
    layer.below = below
    layer.spec = spec
    layer.enhancement = enhancement
    layer.config = config
    layer._guard = Guard(
        spec,
        config,
        switches if switches is not None else process_switchboard,
        health if health is not None else process_health,
        stats if stats is not None else process_stats,
    )
    for name in spec.enhances:
        # Bound once: a bound-method lookup per call is measurable on the hot path.
        setattr(layer, f"_enhanced_{name}", getattr(enhancement, name))
        setattr(layer, f"_below_{name}", getattr(below, name))
    return layer
