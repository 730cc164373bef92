"""The operations ``patchbay patches`` and the admin API share: list, enable, disable, rollout, reset.

The gateway and the CLI never load patches (that would import worker code): each worker publishes
to Redis what it installed, applied, refused and found broken, and the order of each stack; this
module reads that back and merges it with the switches, the counters and the health the workers
flush. The names of the installed patches also come from package metadata, without importing
them, so a patch can be switched before any worker has started. Sync ``redis.Redis`` throughout:
these are operator commands, not the hot path.
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

from patches.discovery import installed_patch_names
from patches.metrics import read_cluster_health, read_cluster_stats
from patches.switches import SWITCHES_KEY, Switch, parse_switches, set_enabled, set_rollout
from patches.switches import clear as clear_switches

__all__ = [
    "REGISTERED_KEY",
    "STACKS_KEY",
    "PatchStatus",
    "UnknownPatchError",
    "clear",
    "disable",
    "enable",
    "known_patches",
    "list_patches",
    "list_stacks",
    "publish",
    "rollout",
]

log = logging.getLogger(__name__)

REGISTERED_KEY = "patchbay:patches:registered"
STACKS_KEY = "patchbay:patches:stacks"


class UnknownPatchError(ValueError):
    """A name that is neither installed here nor published by any worker."""


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
    errors: int  # the enhancement's own failures
    fallbacks: int
    below_failed: int  # failures of the layer below, propagated, not charged to the patch
    fallback_rate: float  # fallbacks / calls where the enhancement ran
    refused: bool  # not applied in some worker: refused at apply time, or broken
    refusal_reason: str
    broken: bool  # installed, but its entry point could not be loaded
    position: int | None  # place in its kind's stack, 1 = just above the base; None when not applied


def publish(client: redis.Redis, entries: list[dict[str, Any]], stacks: dict[str, list[str]]) -> None:
    """Tell Redis what this worker installed, applied, refused and found broken, and its stacks (top first)."""
    origin = f"{socket.gethostname()}:{os.getpid()}"
    pipe = client.pipeline(transaction=True)
    for entry in entries:
        pipe.hset(REGISTERED_KEY, entry["name"], json.dumps({**entry, "origin": origin, "published_at": time.time()}))
    for kind, names in stacks.items():
        pipe.hset(STACKS_KEY, kind, json.dumps(names))
    pipe.execute()


def _read_json_hash(client: redis.Redis, key: str) -> dict[str, Any]:
    entries: dict[str, Any] = {}
    for field, value in client.hgetall(key).items():
        name = field.decode() if isinstance(field, bytes) else field
        try:
            entries[name] = json.loads(value)
        except ValueError:
            log.warning("ignoring malformed entry %s in %s", name, key)
    return entries


def list_stacks(client: redis.Redis) -> dict[str, list[str]]:
    """Each kind's stack as a worker last built it: patch names from the top down, then the base's class."""
    return {kind: [str(name) for name in names] for kind, names in _read_json_hash(client, STACKS_KEY).items()}


def known_patches(client: redis.Redis) -> set[str]:
    return set(_read_json_hash(client, REGISTERED_KEY)) | installed_patch_names()


def list_patches(client: redis.Redis) -> list[PatchStatus]:
    """Every patch a worker published, with its effective state and cluster-wide counts."""
    published = _read_json_hash(client, REGISTERED_KEY)
    switches = parse_switches(client.hgetall(SWITCHES_KEY))
    stats = read_cluster_stats(client)
    health = read_cluster_health(client)
    statuses = []
    for name in sorted(published):
        entry = published[name]
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
        position = entry.get("position")
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
                below_failed=int(counts.get("below_failed", 0)),
                fallback_rate=fallbacks / (calls - skipped) if calls > skipped else 0.0,
                refused=bool(entry.get("refused", False)),
                refusal_reason=str(entry.get("refusal_reason", "")),
                broken=bool(entry.get("broken", False)),
                position=int(position) if position is not None else None,
            )
        )
    return statuses


def _require_known(client: redis.Redis, name: str) -> None:
    known = known_patches(client)
    if name not in known:
        listing = ", ".join(sorted(known)) or "none is installed"
        raise UnknownPatchError(f"no patch named {name!r}; known patches: {listing}")


def enable(client: redis.Redis, name: str) -> None:
    _require_known(client, name)
    set_enabled(client, name, True)


def disable(client: redis.Redis, name: str) -> None:
    _require_known(client, name)
    set_enabled(client, name, False)


def rollout(client: redis.Redis, name: str, percent: float) -> None:
    if not 0.0 <= percent <= 100.0:
        raise ValueError(f"rollout percent must be between 0 and 100, not {percent:g}")
    _require_known(client, name)
    set_rollout(client, name, percent)


def clear(client: redis.Redis, name: str) -> None:
    """Forget the runtime switches of ``name``: its config decides again."""
    _require_known(client, name)
    clear_switches(client, name)
