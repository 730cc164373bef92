"""Patches are plugins: every patch, built-in or third-party, is an entry point of ``patchbay.patches``.

A package declares its patch in its own ``pyproject.toml``::

    [project.entry-points."patchbay.patches"]
    redact_pii = "patchbay_redact_pii:SPEC"

and ``pip install`` is all it takes (the ecosystem's plugin convention, as pytest and Flake8 use).
The entry point's name must be the patch's name, so a process can list and switch installed
patches without importing them (the gateway never does). Loading never stops a worker: an entry
point that fails to import, does not name a ``PatchSpec``, or disagrees about its name is kept in
the registry as broken, with the reason, and shown by ``patchbay patches list``.
"""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint, entry_points

from patches.registry import PatchRegistry
from patches.spec import PatchSpec

__all__ = ["ENTRY_POINT_GROUP", "discover", "installed_patch_names"]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "patchbay.patches"


def _entry_points(group: str) -> list[EntryPoint]:
    return sorted(entry_points(group=group), key=lambda point: (point.name, point.value))


def installed_patch_names(group: str = ENTRY_POINT_GROUP) -> set[str]:
    """The names of the installed patches, read from package metadata: nothing is imported."""
    return {point.name for point in _entry_points(group)}


def discover(group: str = ENTRY_POINT_GROUP) -> PatchRegistry:
    """A registry of every installed patch; the broken ones recorded with why, none raising."""
    registry = PatchRegistry()
    for point in _entry_points(group):
        source = f"entry point {point.name} = {point.value}"
        dist = getattr(point, "dist", None)
        if dist is not None:
            source += f" (package {dist.metadata['Name']} {dist.version})"
        reason = _load_problem(point, registry)
        if isinstance(reason, PatchSpec):
            registry.register(reason)
            continue
        log.error("patch %s is installed but broken, not applied: %s [%s]", point.name, reason, source)
        registry.mark_broken(point.name, reason, source)
    return registry


def _load_problem(point: EntryPoint, registry: PatchRegistry) -> PatchSpec | str:
    """The loaded spec, or why this entry point gives none."""
    if point.name in registry or point.name in registry.broken:
        return f"another installed package already provides a patch named {point.name!r}"
    try:
        loaded = point.load()
    except (Exception, SystemExit) as exc:  # a plugin's import error must not stop the worker
        return f"cannot load {point.value}: {type(exc).__name__}: {exc}"
    if not isinstance(loaded, PatchSpec):
        return f"{point.value} is a {type(loaded).__name__}, not a PatchSpec"
    if loaded.name != point.name:
        return f"the entry point is named {point.name!r} but its spec is patch {loaded.name!r}; the names must match"
    return loaded
