"""Redis memory pressure: refuse new work while there is still room to finish the work already taken.

Redis runs with a memory cap and ``noeviction`` (queued messages are never dropped to make room), so
a full Redis refuses writes. The workers must still be able to finish what they hold — store the
reply, write the ledger, ack the task (Celery's ack is a MULTI, which a full Redis refuses outright,
and a Celery worker treats that as unrecoverable) — so admission closes *before* the cap: above
``PATCHBAY_REDIS_HIGH_WATER`` (90 %) of ``maxmemory`` every new message is answered "busy, try again".
A sampler reads ``INFO memory`` twice a second, off the message path; a Redis without a cap is never
under pressure. If Redis does refuse a write with OOM anyway, admission answers "busy" just the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as aioredis
from prometheus_client import Gauge

__all__ = ["MemoryPressure"]

log = logging.getLogger(__name__)

USED = Gauge("patchbay_redis_memory_used_ratio", "Redis used_memory / maxmemory (0 when Redis has no cap)")


class MemoryPressure:
    def __init__(self, redis: aioredis.Redis, *, high_water: float = 0.9, interval_s: float = 0.5) -> None:
        self._redis = redis
        self.high_water = high_water
        self.interval_s = interval_s
        self.ratio = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def full(self) -> bool:
        return self.ratio >= self.high_water

    async def sample(self) -> float:
        info = await self._redis.info("memory")
        cap = int(info.get("maxmemory", 0) or 0)
        ratio = int(info.get("used_memory", 0)) / cap if cap else 0.0
        if (ratio >= self.high_water) != self.full:
            log.warning(
                "Redis memory at %.0f%% of its cap: %s",
                ratio * 100,
                "refusing new messages (busy)" if ratio >= self.high_water else "taking messages again",
            )
        self.ratio = ratio
        USED.set(ratio)
        return ratio

    async def _run(self) -> None:
        while True:
            try:
                await self.sample()
            except Exception as exc:  # Redis away: admission's own calls will say so
                log.debug("Redis memory sample failed: %r", exc)
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="redis-memory-pressure")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
