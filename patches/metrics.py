"""What every patch layer counts, and how the counts leave the worker process.

Three views of the same events:

- Prometheus metrics of this process (``patchbay_patch_*``, exported by ``ProcessPatchCollector``
  from the plain counters; ``PatchRuntime.start`` registers it, nothing registers at import);
- plain per-process counters (``PatchStats``) that a ``StatsFlusher`` thread pushes to Redis as
  HINCRBY deltas about once a second, because Celery workers are not the process behind the
  gateway's /metrics;
- ``RedisPatchStatsCollector``, which the gateway registers so its /metrics shows the totals of
  every worker (``patchbay_patches_cluster_*``: distinct names, so both can live in one registry).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate
from typing import TYPE_CHECKING, Any, Final

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.backoff import NoBackoff
from redis.retry import Retry

if TYPE_CHECKING:  # the gateway reads cluster stats without loading the health machinery
    from patches.health import HealthMonitor, HealthSnapshot

__all__ = [
    "COUNTERS",
    "ERROR_REASONS",
    "FALLBACK_REASONS",
    "HEALTH_KEY",
    "LATENCY_BUCKETS_S",
    "STATS_KEY_PREFIX",
    "PatchStats",
    "ProcessPatchCollector",
    "ProcessStats",
    "RedisPatchStatsCollector",
    "StatsFlusher",
    "read_cluster_health",
    "read_cluster_stats",
]

log = logging.getLogger(__name__)

STATS_KEY_PREFIX: Final = "patchbay:patches:stats:"
HEALTH_KEY: Final = "patchbay:patches:health"
FALLBACK_REASONS: Final = ("exception", "timeout", "rejected")  # the enhancement failed; the layer below answered
ERROR_REASONS: Final = (*FALLBACK_REASONS, "failed_mid_stream")  # every way the enhancement itself can fail
COUNTERS: Final = ("calls", "skipped", "errors", "fallbacks", "below_failed")  # what goes to Redis, per patch
_REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)

LATENCY_BUCKETS_S: Final = (0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class PatchStats:
    """Monotonic per-process counters of one patch, bumped on the hot path with plain int adds.

    ``errors`` counts the enhancement's own failures; ``fallbacks`` counts the calls the layer below
    then served (they differ when the layer below fails too, or a stream broke after its first
    chunk); ``below_failed`` counts calls the layer below failed, which propagate and are never
    charged to the patch: that is where an outage is. Plain ints rather than
    ``prometheus_client`` children on the hot path: those take a lock per ``inc``/``observe``,
    which cost more than the rest of the layer together; ``ProcessPatchCollector`` exports these
    same numbers under the Prometheus names instead.
    """

    __slots__ = (
        "below_failed",
        "calls_by_method",
        "errors_by_reason",
        "fallbacks_by_reason",
        "latency_buckets",
        "latency_s_sum",
        "skipped",
    )

    def __init__(self) -> None:
        self.calls_by_method: dict[str, int] = {}
        self.skipped = 0
        self.errors_by_reason: dict[str, int] = dict.fromkeys(ERROR_REASONS, 0)
        self.fallbacks_by_reason: dict[str, int] = dict.fromkeys(FALLBACK_REASONS, 0)
        self.below_failed = 0
        self.latency_buckets = [0] * (len(LATENCY_BUCKETS_S) + 1)  # the last one is +Inf
        self.latency_s_sum = 0.0

    def observe(self, seconds: float) -> None:
        self.latency_buckets[bisect_left(LATENCY_BUCKETS_S, seconds)] += 1
        self.latency_s_sum += seconds

    @property
    def calls(self) -> int:
        return sum(self.calls_by_method.values())

    @property
    def errors(self) -> int:
        return sum(self.errors_by_reason.values())

    @property
    def fallbacks(self) -> int:
        return sum(self.fallbacks_by_reason.values())

    def as_fields(self) -> dict[str, float]:
        """The totals the flusher pushes to Redis."""
        return {
            "calls": self.calls,
            "skipped": self.skipped,
            "errors": self.errors,
            "fallbacks": self.fallbacks,
            "below_failed": self.below_failed,
            "latency_ms_sum": self.latency_s_sum * 1000.0,
        }


@dataclass
class ProcessStats:
    """Every patch's ``PatchStats`` in one ``PatchRuntime``."""

    patches: dict[str, PatchStats] = field(default_factory=dict)

    def for_patch(self, name: str) -> PatchStats:
        stats = self.patches.get(name)
        if stats is None:
            stats = self.patches[name] = PatchStats()
        return stats


class ProcessPatchCollector(Collector):
    """This process's patch counters as ``patchbay_patch_*`` Prometheus metrics."""

    def __init__(self, stats: ProcessStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "patchbay_patch_calls", "Calls of an enhanced method through a patch layer", labels=["patch", "method"]
        )
        skipped = CounterMetricFamily(
            "patchbay_patch_skipped",
            "Calls sent straight below: switched off, outside rollout, auto-disabled",
            labels=["patch"],
        )
        errors = CounterMetricFamily(
            "patchbay_patch_errors",
            "The enhancement's own failures (exception, timeout, rejected result, failed mid-stream)",
            labels=["patch", "reason"],
        )
        below_failed = CounterMetricFamily(
            "patchbay_patch_below_failed",
            "Calls the layer below failed (propagated to the caller, not charged to the patch)",
            labels=["patch"],
        )
        fallbacks = CounterMetricFamily(
            "patchbay_patch_fallbacks",
            "Calls the layer below served after the enhancement failed",
            labels=["patch", "reason"],
        )
        latency = HistogramMetricFamily(
            "patchbay_patch_latency_seconds",
            "Time spent in the enhancement's own work per call (waits on the layer below excluded)",
            labels=["patch"],
        )
        for name, stats in sorted(self._stats.patches.items()):
            for method, count in sorted(stats.calls_by_method.items()):
                calls.add_metric([name, method], count)
            skipped.add_metric([name], stats.skipped)
            for reason in ERROR_REASONS:
                errors.add_metric([name, reason], stats.errors_by_reason[reason])
            for reason in FALLBACK_REASONS:
                fallbacks.add_metric([name, reason], stats.fallbacks_by_reason[reason])
            below_failed.add_metric([name], stats.below_failed)
            cumulative = list(accumulate(stats.latency_buckets))
            bounds = [repr(bound) for bound in LATENCY_BUCKETS_S] + ["+Inf"]
            latency.add_metric([name], list(zip(bounds, cumulative, strict=True)), stats.latency_s_sum)
        yield from (calls, skipped, errors, fallbacks, below_failed, latency)


class StatsFlusher:
    """Push this process's counter deltas and health changes to Redis from a daemon thread.

    Deltas are computed against what was last written successfully, so nothing is lost while
    Redis is away: the next successful flush carries everything since.
    """

    def __init__(
        self,
        redis_url: str,
        stats: ProcessStats,
        health: HealthMonitor,
        interval_s: float = 1.0,
    ) -> None:
        self.redis_url = redis_url
        self.stats = stats
        self.health = health
        self.interval_s = interval_s
        self.failed_flushes = 0
        self._flushed: dict[str, dict[str, float]] = {}
        self._health_written: dict[str, tuple[str, float]] = {}
        self._failing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._origin = f"{socket.gethostname()}:{os.getpid()}"

    def flush_once(self, client: redis.Redis) -> bool:
        """Write what changed since the last successful flush; False (logged once) when Redis is away."""
        pending: dict[str, tuple[dict[str, float], dict[str, float]]] = {}  # name -> (delta, new total)
        for name, stats in list(self.stats.patches.items()):
            current = stats.as_fields()
            before = self._flushed.get(name, {})
            delta = {key: value - before.get(key, 0) for key, value in current.items()}
            if any(delta.values()):
                pending[name] = (delta, current)
        health_changes = {
            name: snapshot
            for name, snapshot in self.health.snapshots().items()
            if self._health_written.get(name) != (snapshot.state.value, snapshot.since)
        }
        if not pending and not health_changes:
            return True
        pipe = client.pipeline(transaction=False)
        for name, (delta, _) in pending.items():
            key = STATS_KEY_PREFIX + name
            for counter in COUNTERS:
                if delta[counter]:
                    pipe.hincrby(key, counter, int(delta[counter]))
            if delta["latency_ms_sum"]:
                pipe.hincrbyfloat(key, "latency_ms_sum", delta["latency_ms_sum"])
        for name, snapshot in health_changes.items():
            pipe.hset(HEALTH_KEY, name, _health_json(snapshot, self._origin))
        try:
            pipe.execute()
        except _REDIS_ERRORS as exc:
            self.failed_flushes += 1
            if not self._failing:
                self._failing = True
                log.warning("cannot flush patch stats to Redis (%s); keeping them until it is back", exc)
            return False
        if self._failing:
            self._failing = False
            log.info("patch stats flushing to Redis again")
        for name, (_, current) in pending.items():
            self._flushed[name] = current
        for name, snapshot in health_changes.items():
            self._health_written[name] = (snapshot.state.value, snapshot.since)
        return True

    def start_background_thread(self) -> threading.Thread:
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("this StatsFlusher already runs")
        self._stop.clear()
        thread = threading.Thread(target=self._run, name="patch-stats-flusher", daemon=True)
        thread.start()
        self._thread = thread
        return thread

    def _run(self) -> None:
        client = redis.Redis.from_url(
            self.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0, retry=Retry(NoBackoff(), 0)
        )
        try:
            while not self._stop.wait(self.interval_s):
                self.flush_once(client)
            self.flush_once(client)  # a last flush on the way out, so a clean stop loses nothing
        finally:
            client.close()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout_s)


def _health_json(snapshot: HealthSnapshot, origin: str) -> str:
    return json.dumps({"state": snapshot.state.value, "since": snapshot.since, "origin": origin})


def read_cluster_stats(client: redis.Redis) -> dict[str, dict[str, float]]:
    """``{patch: {calls, skipped, errors, fallbacks, below_failed, latency_ms_sum}}`` summed over every worker."""
    names = [
        key.decode()[len(STATS_KEY_PREFIX) :] if isinstance(key, bytes) else str(key)[len(STATS_KEY_PREFIX) :]
        for key in client.scan_iter(match=STATS_KEY_PREFIX + "*", count=500)
    ]
    if not names:
        return {}
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(STATS_KEY_PREFIX + name)
    result: dict[str, dict[str, float]] = {}
    for name, raw in zip(names, pipe.execute(), strict=True):
        values = dict.fromkeys((*COUNTERS, "latency_ms_sum"), 0.0)
        for key, value in raw.items():
            values[key.decode() if isinstance(key, bytes) else key] = float(value)
        result[name] = values
    return result


def read_cluster_health(client: redis.Redis) -> dict[str, dict[str, Any]]:
    """``{patch: {"state", "since", "origin"}}`` as last published by any worker."""
    health: dict[str, dict[str, Any]] = {}
    for key, value in client.hgetall(HEALTH_KEY).items():
        name = key.decode() if isinstance(key, bytes) else key
        try:
            health[name] = json.loads(value)
        except ValueError:
            log.warning("ignoring malformed health entry %s=%r in %s", name, value, HEALTH_KEY)
    return health


class RedisPatchStatsCollector(Collector):
    """Cluster-wide patch totals from Redis, for the gateway's /metrics: ``REGISTRY.register(...)``."""

    def __init__(self, redis_url: str) -> None:
        self._client = redis.Redis.from_url(redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self.scrape_errors = 0

    def collect(self) -> Iterator[Metric]:
        errors = CounterMetricFamily(
            "patchbay_patches_cluster_scrape_errors", "Failed reads of the patch stats from Redis"
        )
        try:
            stats = read_cluster_stats(self._client)
            health = read_cluster_health(self._client)
        except _REDIS_ERRORS as exc:
            self.scrape_errors += 1
            log.warning("cannot read patch stats from Redis for /metrics: %s", exc)
            errors.add_metric([], self.scrape_errors)
            yield errors
            return
        families = {
            counter: CounterMetricFamily(
                f"patchbay_patches_cluster_{counter}",
                f"Patch layer {counter} summed over every worker",
                labels=["patch"],
            )
            for counter in COUNTERS
        }
        latency = CounterMetricFamily(
            "patchbay_patches_cluster_latency_seconds", "Time spent in enhancements, every worker", labels=["patch"]
        )
        for name, values in sorted(stats.items()):
            for counter, family in families.items():
                family.add_metric([name], values[counter])
            latency.add_metric([name], values["latency_ms_sum"] / 1000.0)
        state = GaugeMetricFamily(
            "patchbay_patches_cluster_health",
            "1 for the health state a worker last published",
            labels=["patch", "state"],
        )
        for name, entry in sorted(health.items()):
            state.add_metric([name, str(entry.get("state", "unknown"))], 1.0)
        errors.add_metric([], self.scrape_errors)
        yield from families.values()
        yield latency
        yield state
        yield errors
