"""The operations ``patchbay patches`` and the admin API share: list, enable, disable, rollout.

A gateway or CLI process may not have imported the same patch modules as the workers, so the
workers publish what they registered (and what they refused to apply) to Redis, and ``list``
merges that with this process's own registry. Sync ``redis.Redis`` throughout: these are
operator commands, not the hot path.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

import redis

from patches.metrics import read_cluster_health, read_cluster_stats
from patches.registry import PatchRegistry, Refusal, default_registry
from patches.switches import SWITCHES_KEY, Switch, clear_sync, parse_switches, set_enabled_sync, set_rollout_sync

__all__ = [
    "REGISTERED_KEY",
    "PatchStatus",
    "UnknownPatchError",
    "clear",
    "disable",
    "enable",
    "known_patches",
    "list_patches",
    "publish_registry",
    "rollout",
]

log = logging.getLogger(__name__)

REGISTERED_KEY = "patchbay:patches:registered"


class UnknownPatchError(ValueError):
    """A name that neither this process nor any worker registered."""


@dataclass(frozen=True, slots=True)
class PatchStatus:
    name: str
    kind: str
    description: str
    enabled: bool  # effective: the runtime switch, else the config
    enabled_by: str  # "switch" or "config"
    rollout_percent: float
    rollout_by: str
    health: str  # ok / auto-disabled / probing, as a worker last published it
    health_since: float | None
    calls: int
    skipped: int
    errors: int
    fallbacks: int
    fallback_rate: float  # fallbacks / calls where the enhancement ran
    refused: bool  # refused at apply time (by some worker, or this process)
    refusal_reason: str
    source: str  # "workers", "local" or "workers+local"


def _describe_spec_locally(registry: PatchRegistry, name: str) -> dict[str, Any]:
    spec = registry.get(name)
    assert spec is not None
    entry: dict[str, Any] = {"name": name, "kind": spec.kind.value, "description": spec.description}
    try:
        config = registry.applied_configs.get(name) or spec.load_config()
        entry |= {"config_enabled": config.enabled, "config_rollout_percent": config.rollout_percent}
    except Exception as exc:  # a broken config is shown, not fatal to listing
        log.warning("cannot load the config of patch %s: %s", name, exc)
        entry |= {"config_enabled": False, "config_rollout_percent": 0.0, "config_error": str(exc)}
    refusal = registry.refusals.get(name)
    entry |= {"refused": refusal is not None, "refusal_reason": refusal.reason if refusal else ""}
    return entry


def publish_registry(client: redis.Redis, registry: PatchRegistry, refusals: dict[str, Refusal] | None = None) -> None:
    """Tell Redis which patches this worker registered and which it refused (call after building the stack)."""
    refused = registry.refusals if refusals is None else refusals
    origin = f"{socket.gethostname()}:{os.getpid()}"
    pipe = client.pipeline(transaction=True)
    for spec in registry.specs():
        entry = _describe_spec_locally(registry, spec.name)
        refusal = refused.get(spec.name)
        entry |= {"refused": refusal is not None, "refusal_reason": refusal.reason if refusal else ""}
        entry |= {"origin": origin, "published_at": time.time()}
        pipe.hset(REGISTERED_KEY, spec.name, json.dumps(entry))
    pipe.execute()


def _published(client: redis.Redis) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    for key, value in client.hgetall(REGISTERED_KEY).items():
        name = key.decode() if isinstance(key, bytes) else key
        try:
            entries[name] = json.loads(value)
        except ValueError:
            log.warning("ignoring malformed entry %s in %s", name, REGISTERED_KEY)
    return entries


def known_patches(client: redis.Redis, registry: PatchRegistry) -> set[str]:
    return set(_published(client)) | {spec.name for spec in registry.specs()}


def list_patches(client: redis.Redis, registry: PatchRegistry | None = None) -> list[PatchStatus]:
    """Every patch a worker published or this process registered, with its effective state and counts."""
    registry = registry if registry is not None else default_registry
    published = _published(client)
    local = {spec.name: _describe_spec_locally(registry, spec.name) for spec in registry.specs()}
    switches = parse_switches(client.hgetall(SWITCHES_KEY))
    stats = read_cluster_stats(client)
    health = read_cluster_health(client)
    statuses = []
    for name in sorted(published.keys() | local.keys()):
        entry = {**local.get(name, {}), **published.get(name, {})}  # the workers' view wins: they run it
        if name in local and local[name]["refused"] and not entry.get("refused"):
            entry |= {"refused": True, "refusal_reason": local[name]["refusal_reason"]}
        switch = switches.get(name) or Switch()
        enabled = switch.enabled if switch.enabled is not None else bool(entry.get("config_enabled", False))
        percent = (
            switch.rollout_percent
            if switch.rollout_percent is not None
            else float(entry.get("config_rollout_percent", 100.0))
        )
        counts = stats.get(name, {})
        calls, skipped = int(counts.get("calls", 0)), int(counts.get("skipped", 0))
        fallbacks = int(counts.get("fallbacks", 0))
        state: dict[str, Any] = health.get(name, {})
        statuses.append(
            PatchStatus(
                name=name,
                kind=str(entry.get("kind", "?")),
                description=str(entry.get("description", "")),
                enabled=enabled,
                enabled_by="config" if switch.enabled is None else "switch",
                rollout_percent=percent,
                rollout_by="config" if switch.rollout_percent is None else "switch",
                health=str(state.get("state", "ok")),
                health_since=float(state["since"]) if "since" in state else None,
                calls=calls,
                skipped=skipped,
                errors=int(counts.get("errors", 0)),
                fallbacks=fallbacks,
                fallback_rate=fallbacks / (calls - skipped) if calls > skipped else 0.0,
                refused=bool(entry.get("refused", False)),
                refusal_reason=str(entry.get("refusal_reason", "")),
                source="+".join(part for part, where in (("workers", published), ("local", local)) if name in where),
            )
        )
    return statuses


def _require_known(client: redis.Redis, registry: PatchRegistry, name: str) -> None:
    known = known_patches(client, registry)
    if name not in known:
        listing = ", ".join(sorted(known)) or "none are registered yet"
        raise UnknownPatchError(f"no patch named {name!r}; known patches: {listing}")


def enable(client: redis.Redis, name: str, *, registry: PatchRegistry | None = None) -> None:
    _require_known(client, registry if registry is not None else default_registry, name)
    set_enabled_sync(client, name, True)


def disable(client: redis.Redis, name: str, *, registry: PatchRegistry | None = None) -> None:
    _require_known(client, registry if registry is not None else default_registry, name)
    set_enabled_sync(client, name, False)


def rollout(client: redis.Redis, name: str, percent: float, *, registry: PatchRegistry | None = None) -> None:
    if not 0.0 <= percent <= 100.0:
        raise ValueError(f"rollout percent must be between 0 and 100, not {percent:g}")
    _require_known(client, registry if registry is not None else default_registry, name)
    set_rollout_sync(client, name, percent)


def clear(client: redis.Redis, name: str, *, registry: PatchRegistry | None = None) -> None:
    """Forget the runtime switches of ``name``: its config decides again."""
    _require_known(client, registry if registry is not None else default_registry, name)
    clear_sync(client, name)
