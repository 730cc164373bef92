"""Runtime switches in Redis, seen by every running process without a restart.

State lives in the hash ``patchbay:patches:switches`` (fields ``<patch>.enabled`` = "1"/"0" and
``<patch>.rollout`` = percent; a missing field means "use the config"), and every write INCRs
``patchbay:patches:version`` in the same transaction. Each process keeps a ``SwitchBoard``: its
refresh loop polls the version (one cheap GET) and re-reads the hash only when it moved, so a
``disable`` reaches every worker within one poll interval. The hot path reads ``board.table``, a
plain dict swapped whole on refresh: no I/O, no lock. When Redis is gone the board keeps the last
known state (a kill switch must not flip because the store blinked: docs/decisions.md, "Runtime
switches") and says so once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = [
    "SWITCHES_KEY",
    "VERSION_KEY",
    "Switch",
    "SwitchBoard",
    "clear",
    "parse_switches",
    "set_enabled",
    "set_rollout",
]

log = logging.getLogger(__name__)

SWITCHES_KEY = "patchbay:patches:switches"
VERSION_KEY = "patchbay:patches:version"
_REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)
# No retries with backoff inside a poll (redis-py retries 3 times by default): the next poll is the retry,
# and an outage must be noticed at once.
_POLL_CLIENT_OPTIONS: dict[str, Any] = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}


@dataclass(frozen=True, slots=True)
class Switch:
    enabled: bool | None = None  # None: the config decides
    rollout_percent: float | None = None


def parse_switches(raw: Mapping[Any, Any]) -> dict[str, Switch]:
    """Decode the Redis hash into ``{patch: Switch}``; an undecodable field is logged and ignored."""
    fields: dict[str, dict[str, Any]] = {}
    for key, value in raw.items():
        field = key.decode() if isinstance(key, bytes) else str(key)
        text = value.decode() if isinstance(value, bytes) else str(value)
        name, _, attribute = field.rpartition(".")
        try:
            if attribute == "enabled":
                fields.setdefault(name, {})["enabled"] = text == "1"
            elif attribute == "rollout":
                fields.setdefault(name, {})["rollout_percent"] = float(text)
            else:
                raise ValueError("unknown switch attribute")
        except ValueError:
            log.warning("ignoring malformed switch %s=%r in %s", field, text, SWITCHES_KEY)
    return {name: Switch(**values) for name, values in fields.items()}


class SwitchBoard:
    """This process's last known switches, kept fresh by a background refresh thread."""

    def __init__(self) -> None:
        self.table: dict[str, Switch] = {}  # replaced whole, never mutated: readers need no lock
        self.version: int | None = None
        self.loaded = False  # at least one successful read of the hash
        self.stale = False
        self.refresh_errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def get(self, name: str) -> Switch | None:
        return self.table.get(name)

    # ------------------------------------------------------------------ one refresh

    def refresh_once(self, client: redis.Redis) -> bool:
        """Poll once with a sync client; True when the table changed. Never raises for a Redis outage."""
        try:
            version = _as_int(client.get(VERSION_KEY))
            if self.loaded and version == self.version:
                self._mark_fresh()
                return False
            pipe = client.pipeline(transaction=True)
            pipe.get(VERSION_KEY)
            pipe.hgetall(SWITCHES_KEY)
            version_raw, raw = pipe.execute()
        except _REDIS_ERRORS as exc:
            self._mark_stale(exc)
            return False
        return self._install(_as_int(version_raw), raw)

    def _install(self, version: int | None, raw: Mapping[Any, Any]) -> bool:
        self._mark_fresh()
        table = parse_switches(raw)
        changed = table != self.table
        self.table = table
        self.version = version
        self.loaded = True
        if changed:
            log.info("patch switches now %s (version %s)", _describe(table), self.version)
        return changed

    def _mark_stale(self, exc: BaseException) -> None:
        self.refresh_errors += 1
        if not self.stale:
            self.stale = True
            log.warning("cannot reach Redis for patch switches (%s); keeping the last known state", exc)

    def _mark_fresh(self) -> None:
        if self.stale:
            self.stale = False
            log.info("Redis reachable again; patch switches are live")

    # ------------------------------------------------------------------ the refresh thread

    def start_background_thread(self, redis_url: str, interval_s: float = 0.5) -> threading.Thread:
        """Load the switches now, then keep them fresh from a daemon thread (what a worker process uses)."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("this SwitchBoard already has a refresh thread")
        self._stop.clear()
        client = redis.Redis.from_url(redis_url, **_POLL_CLIENT_OPTIONS, retry=Retry(NoBackoff(), 0))
        self.refresh_once(client)
        thread = threading.Thread(
            target=self._refresh_thread, args=(client, interval_s), name="patch-switches", daemon=True
        )
        thread.start()
        self._thread = thread
        return thread

    def _refresh_thread(self, client: redis.Redis, interval_s: float) -> None:
        try:
            while not self._stop.wait(interval_s):
                self.refresh_once(client)
        finally:
            client.close()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout_s)


def _as_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _describe(table: Mapping[str, Switch]) -> str:
    if not table:
        return "all from config"
    return ", ".join(f"{name}(enabled={s.enabled}, rollout={s.rollout_percent})" for name, s in sorted(table.items()))


# ---------------------------------------------------------------------- writers
# Each writer is one MULTI/EXEC: the field change and the version bump land together, so a
# refresh that sees the new version always reads the new field.


def _queue_set(pipe: Any, name: str, attribute: str, value: str) -> None:
    pipe.hset(SWITCHES_KEY, f"{name}.{attribute}", value)
    pipe.incr(VERSION_KEY)


def _queue_clear(pipe: Any, name: str) -> None:
    pipe.hdel(SWITCHES_KEY, f"{name}.enabled", f"{name}.rollout")
    pipe.incr(VERSION_KEY)


def _check_percent(percent: float) -> str:
    if not 0.0 <= percent <= 100.0:
        raise ValueError(f"rollout percent must be between 0 and 100, not {percent}")
    return repr(float(percent))


def set_enabled(client: redis.Redis, name: str, enabled: bool) -> None:
    pipe = client.pipeline(transaction=True)
    _queue_set(pipe, name, "enabled", "1" if enabled else "0")
    pipe.execute()


def set_rollout(client: redis.Redis, name: str, percent: float) -> None:
    value = _check_percent(percent)
    pipe = client.pipeline(transaction=True)
    _queue_set(pipe, name, "rollout", value)
    pipe.execute()


def clear(client: redis.Redis, name: str) -> None:
    """Drop the runtime switches of ``name``: its config decides again."""
    pipe = client.pipeline(transaction=True)
    _queue_clear(pipe, name)
    pipe.execute()
