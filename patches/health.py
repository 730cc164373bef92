"""Per-process health of each patch: switch off a patch that keeps failing, probe it back on.

Outcomes go into a time-based sliding window cut into a fixed number of buckets (memory stays
constant however busy the patch is; the window edge is exact to one bucket). When the share of
failed calls in the window (the enhancement's own failures only: a call whose layer below failed
is not recorded at all) passes ``health_max_error_rate`` with at least
``health_min_calls`` calls, the patch is auto-disabled. After ``health_cooldown_s`` exactly one
probe call is let through: success re-enables the patch, failure starts the cool-down again.
The clock is injectable so tests never sleep.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the gateway reads health snapshots without loading the config machinery
    from patches.spec import PatchConfig

__all__ = ["HealthMonitor", "HealthSnapshot", "HealthState", "PatchHealth"]

log = logging.getLogger(__name__)

_BUCKETS_PER_WINDOW = 20


class HealthState(StrEnum):
    OK = "ok"
    AUTO_DISABLED = "auto-disabled"
    PROBING = "probing"


# Module constants: reading an Enum member off its class is slow on Python 3.11, and record() runs per call.
_OK = HealthState.OK
_PROBING = HealthState.PROBING


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    state: HealthState
    since: float  # wall-clock epoch seconds of the last state change
    calls: int  # in the current window
    failures: int


class PatchHealth:
    """The window and state of one patch. Layers hold it directly: ``.state is OK`` is the hot-path check."""

    __slots__ = (
        "_buckets",
        "_calls",
        "_failures",
        "_lock",
        "_newest",
        "_now",
        "bucket_s",
        "changed_at",
        "cooldown_s",
        "max_error_rate",
        "min_calls",
        "n_buckets",
        "name",
        "since",
        "state",
    )

    def __init__(self, name: str, config: PatchConfig, now: Callable[[], float]) -> None:
        self.name = name
        self.max_error_rate = config.health_max_error_rate
        self.min_calls = config.health_min_calls
        self.cooldown_s = config.health_cooldown_s
        self.n_buckets = _BUCKETS_PER_WINDOW
        self.bucket_s = config.health_window_s / _BUCKETS_PER_WINDOW
        self._now = now
        self._buckets: deque[list[Any]] = deque()  # [bucket index, calls, failures, end time], oldest first
        self._newest: list[Any] | None = None
        self._calls = 0
        self._failures = 0
        # Layers run on one event loop, but the stats flusher reads from its thread and a worker
        # may run several loops: the state machine must move under a lock.
        self._lock = threading.Lock()
        self.state = HealthState.OK
        self.since = 0.0  # monotonic time of entering the state (for the cool-down)
        self.changed_at = time.time()

    # ------------------------------------------------------------------ hot path

    def allow(self) -> bool:
        """Called only when ``state`` is not OK: may this call try the enhancement (as the probe)?"""
        with self._lock:
            now = self._now()
            if self.state is HealthState.OK:
                return True
            if now - self.since < self.cooldown_s:
                return False
            # Cool-down over (or a previous probe never reported, e.g. it was cancelled): one probe.
            self._enter(HealthState.PROBING, now)
            return True

    def record_ok(self) -> None:
        """A success: counted without the lock in the common case (state OK, inside the newest bucket).

        The event loop's thread is the only writer (one loop per worker process) and the stats
        flusher only reads, so an int add needs no lock there; a new bucket, a probe or a failure
        takes the locked path.
        """
        newest = self._newest
        if newest is not None and self.state is _OK and self._now() < newest[3]:
            newest[1] += 1
            self._calls += 1
            return
        self.record(True)

    def record(self, ok: bool) -> None:
        with self._lock:
            now = self._now()
            state = self.state
            if state is not _OK:
                if state is _PROBING:
                    self._finish_probe(ok, now)
                # else: a call that started before the switch-off; the window was already judged
                return
            self._add(ok, now)
            if not ok and self._calls >= self.min_calls and self._failures / self._calls > self.max_error_rate:
                rate = self._failures / self._calls
                log.error(
                    "patch %s auto-disabled: %.0f%% of %d calls failed over the last %.0fs (limit %.0f%%); "
                    "probing again in %.0fs",
                    self.name,
                    rate * 100,
                    self._calls,
                    self.bucket_s * self.n_buckets,
                    self.max_error_rate * 100,
                    self.cooldown_s,
                )
                self._enter(HealthState.AUTO_DISABLED, now)

    # ------------------------------------------------------------------ internals

    def _add(self, ok: bool, now: float) -> None:
        index = int(now // self.bucket_s)
        buckets = self._buckets
        if not buckets or buckets[-1][0] != index:  # the first call in a new bucket: drop what left the window
            buckets.append([index, 0, 0, (index + 1) * self.bucket_s])
            self._newest = buckets[-1]
            oldest_kept = index - self.n_buckets + 1
            while buckets[0][0] < oldest_kept:
                _, calls, failures, _ = buckets.popleft()
                self._calls -= calls
                self._failures -= failures
        last = buckets[-1]
        last[1] += 1
        self._calls += 1
        if not ok:
            last[2] += 1
            self._failures += 1

    def _finish_probe(self, ok: bool, now: float) -> None:
        if ok:
            log.info("patch %s re-enabled: the probe call after the cool-down succeeded", self.name)
            self._buckets.clear()
            self._newest = None
            self._calls = self._failures = 0
            self._enter(HealthState.OK, now)
        else:
            log.error("patch %s stays disabled: the probe call failed; next probe in %.0fs", self.name, self.cooldown_s)
            self._enter(HealthState.AUTO_DISABLED, now)

    def _enter(self, state: HealthState, now: float) -> None:
        self.state = state
        self.since = now
        self.changed_at = time.time()

    def snapshot(self) -> HealthSnapshot:
        with self._lock:
            return HealthSnapshot(self.state, self.changed_at, self._calls, self._failures)


class HealthMonitor:
    """All patches' health in this process; one ``PatchHealth`` per patch name, shared by its layers."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._patches: dict[str, PatchHealth] = {}
        self._lock = threading.Lock()

    def track(self, name: str, config: PatchConfig) -> PatchHealth:
        with self._lock:
            health = self._patches.get(name)
            if health is None:
                health = self._patches[name] = PatchHealth(name, config, self._now)
            return health

    def get(self, name: str) -> PatchHealth | None:
        return self._patches.get(name)

    def snapshots(self) -> dict[str, HealthSnapshot]:
        with self._lock:
            patches = list(self._patches.values())
        return {health.name: health.snapshot() for health in patches}
