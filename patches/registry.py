"""Which patches are installed, which are broken, and in which order the patches of a kind stack.

A registry is filled by discovery (``patches.discovery``, the ``patchbay.patches`` entry points)
or by hand in tests; nothing registers itself at import. A patch whose entry point cannot be
loaded is kept as a ``BrokenPatch`` with its reason, so it is listed, never silently missing.

Order, bottom of the stack first, comes from what each patch declares: ``requires`` (those sit
below it), ``above=`` (it sits above those) and ``below=`` (it sits below those), resolved with
``graphlib.TopologicalSorter``; ties go by name, so every worker builds the same stack. A cycle, or
a requirement nobody installed, is a configuration error: ``PatchOrderError`` at start-up, naming
the patches.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter

from patches.spec import PatchSpec

__all__ = ["BrokenPatch", "PatchOrderError", "PatchRegistry"]


class PatchOrderError(Exception):
    """The installed patches cannot be ordered: a cycle, or a requirement nobody installed."""


@dataclass(frozen=True, slots=True)
class BrokenPatch:
    """An installed patch that could not be loaded: listed with its reason, never applied."""

    name: str
    reason: str
    source: str  # where it was declared, e.g. "entry point redact_pii = patchbay_redact_pii:SPEC"


class PatchRegistry:
    def __init__(self, specs: Iterable[PatchSpec] = ()) -> None:
        self._specs: dict[str, PatchSpec] = {}
        self.broken: dict[str, BrokenPatch] = {}
        self._lock = threading.Lock()
        for spec in specs:
            self.register(spec)

    def register(self, spec: PatchSpec) -> PatchSpec:
        with self._lock:
            if spec.name in self._specs or spec.name in self.broken:
                raise ValueError(f"a patch named {spec.name!r} is already registered")
            self._specs[spec.name] = spec
        return spec

    def mark_broken(self, name: str, reason: str, source: str) -> None:
        with self._lock:
            self.broken[name] = BrokenPatch(name, reason, source)

    def get(self, name: str) -> PatchSpec | None:
        return self._specs.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def specs(self) -> list[PatchSpec]:
        return list(self._specs.values())

    def check(self, kinds: Sequence[str] = ()) -> None:
        """Raise ``PatchOrderError`` if the patches of any kind (``kinds``, and every kind a patch names) cannot be ordered."""
        for kind in dict.fromkeys([*kinds, *(spec.kind for spec in self._specs.values())]):
            self.ordered(kind)

    def ordered(self, kind: str) -> list[PatchSpec]:
        """The patches of ``kind`` from the bottom of the stack up (the first is applied first)."""
        for spec in self._specs.values():
            missing = [name for name in spec.requires if name not in self._specs and name not in self.broken]
            if missing:
                raise PatchOrderError(
                    f"patch {spec.name!r} requires {', '.join(repr(m) for m in missing)}, which is not installed"
                )
        members = {name: spec for name, spec in self._specs.items() if spec.kind == kind}
        # graphlib's graph: node -> its predecessors, i.e. the patches that sit below it.
        below: dict[str, set[str]] = {name: set() for name in members}
        for name, spec in members.items():
            below[name].update(other for other in (*spec.requires, *spec.above) if other in members)
            for upper in spec.below:
                if upper in members:
                    below[upper].add(name)
        sorter = TopologicalSorter(below)
        try:
            sorter.prepare()
        except CycleError as error:
            cycle = " -> ".join(error.args[1])
            raise PatchOrderError(
                f"patch order cycle among {kind} patches: {cycle} (each sits below the next)"
            ) from None
        placed: list[PatchSpec] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready())
            placed.extend(members[name] for name in ready)
            sorter.done(*ready)
        return placed
