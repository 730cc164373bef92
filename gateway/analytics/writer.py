"""The consumer: drains the events list into SQL in batches, losing nothing if it dies mid-batch.

Each batch is moved atomically (one Lua call) from the events list to this writer's own
processing list, inserted in one transaction, and only then deleted. A writer that dies leaves its
processing list behind with no heartbeat; the next writer to start moves it back to the queue.
Re-inserting a batch that was already committed is harmless: ``event_id`` is unique and
conflicting rows are skipped. Unusable events go to a dead-letter list for inspection, bounded in
count (``PATCHBAY_ANALYTICS_DEAD_MAX``), in size per entry (the first 4 KiB, marked as truncated) and
in time (``PATCHBAY_ANALYTICS_DEAD_TTL``): Redis is also the queue, and junk must not fill it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import socket
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis
from prometheus_client import Counter
from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.analytics.events import EventError, event_row
from gateway.analytics.pseudonym import Pseudonymiser, load_or_create_key
from gateway.analytics.schema import events, reply_ids
from gateway.analytics.settings import AnalyticsSettings
from gateway.analytics.store import open_engine
from gateway.shared.redis_urls import redis_py_url
from gateway.shared.settings import Settings

__all__ = ["AnalyticsWriter"]

log = logging.getLogger(__name__)

WRITTEN = Counter("patchbay_analytics_events_written_total", "analytics events stored in SQL")
DEAD = Counter("patchbay_analytics_events_dead_total", "analytics events that could not be stored")
WRITE_ERRORS = Counter("patchbay_analytics_write_errors_total", "failed analytics batch inserts (retried)")
RECOVERED = Counter("patchbay_analytics_events_recovered_total", "events moved back from a dead writer")

_TAKE = """
local items = redis.call('LRANGE', KEYS[1], -tonumber(ARGV[1]), -1)
if #items == 0 then return items end
redis.call('LTRIM', KEYS[1], 0, -#items - 1)
for i = 1, #items, 500 do redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 499, #items))) end
return items
"""

_GIVE_BACK = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for i = 1, #items, 500 do redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 499, #items))) end
redis.call('DEL', KEYS[1])
return #items
"""

HEARTBEAT_S = 30
DEAD_ENTRY_BYTES = 4096


class AnalyticsWriter:
    def __init__(
        self,
        redis_url: str,
        database_url: str,
        *,
        data_dir: Path,
        settings: AnalyticsSettings | None = None,
        name: str | None = None,
    ) -> None:
        self.settings = settings or AnalyticsSettings()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.queue = self.settings.queue
        self.processing = f"{self.queue}:processing:{self.name}"
        self.dead_letter = f"{self.queue}:dead"
        self._heartbeat = f"{self.queue}:writer:{self.name}"
        self._redis = aioredis.Redis.from_url(redis_py_url(redis_url))
        self._database_url = database_url
        self._pseudonymise = Pseudonymiser(load_or_create_key(self.settings.key, data_dir))
        self._take = self._redis.register_script(_TAKE)
        self._give_back = self._redis.register_script(_GIVE_BACK)
        self._engine: AsyncEngine | None = None
        self._engine_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @classmethod
    def from_settings(cls, settings: Settings, analytics: AnalyticsSettings | None = None) -> AnalyticsWriter:
        """The gateway's writer: its Redis, its database (SQLite in the data dir or DATABASE_URL)."""
        return cls(
            settings.effective_redis_url, settings.sqlalchemy_url, data_dir=settings.data_dir, settings=analytics
        )

    async def engine(self) -> AsyncEngine:
        async with self._engine_lock:  # the run loop and a caller may ask at once: create the tables once
            if self._engine is None:
                self._engine = await open_engine(self._database_url)
            return self._engine

    async def recover(self) -> int:
        """Requeue what dead writers (no heartbeat) and this writer's last life left in processing."""
        moved = 0
        async for key in self._redis.scan_iter(match=f"{self.queue}:processing:*"):
            owner = key.decode().removeprefix(f"{self.queue}:processing:")
            if owner != self.name and await self._redis.exists(f"{self.queue}:writer:{owner}"):
                continue
            moved += int(await self._give_back(keys=[key, self.queue]))
        if moved:
            RECOVERED.inc(moved)
            log.warning("analytics: requeued %d events left by a writer that stopped mid-batch", moved)
        return moved

    async def drain_once(self, wait_s: float = 0.0) -> int:
        """Move one batch (waiting up to ``wait_s`` for the first event) and store it; returns its size."""
        await self._redis.set(self._heartbeat, "1", ex=HEARTBEAT_S)
        batch: list[bytes] = list(await self._take(keys=[self.queue, self.processing], args=[self.settings.batch_size]))
        if not batch and wait_s > 0:
            first = await self._redis.blmove(self.queue, self.processing, math.ceil(wait_s), "RIGHT", "LEFT")
            if first is None:
                return 0
            rest = await self._take(keys=[self.queue, self.processing], args=[self.settings.batch_size - 1])
            batch = [first if isinstance(first, bytes) else first.encode(), *rest]
        if not batch:
            return 0
        await self._store(batch)
        await self._redis.delete(self.processing)
        return len(batch)

    async def flush(self) -> int:
        """Store everything queued now (tests, shutdown)."""
        total = 0
        while count := await self.drain_once():
            total += count
        return total

    async def _store(self, batch: list[bytes]) -> None:
        rows: list[dict[str, Any]] = []
        index: list[dict[str, str]] = []
        dead: list[bytes] = []
        for raw in reversed(batch):  # oldest first, so ids follow arrival
            try:
                row, links = event_row(json.loads(raw), self._pseudonymise)
            except (EventError, ValueError, TypeError, AttributeError) as exc:
                log.error("analytics: unusable event moved to %s: %s", self.dead_letter, exc)
                dead.append(raw)
                continue
            rows.append(row)
            index += links
        engine = await self.engine()
        async with engine.begin() as conn:
            if rows:
                await conn.execute(_insert_ignoring_duplicates(engine, events, "event_id"), rows)
            if index:
                await conn.execute(_insert_ignoring_duplicates(engine, reply_ids, "reply_id"), index)
        if dead:
            DEAD.inc(len(dead))
            kept = [raw if len(raw) <= DEAD_ENTRY_BYTES else raw[:DEAD_ENTRY_BYTES] + b"...[truncated]" for raw in dead]
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.lpush(self.dead_letter, *kept)
                pipe.ltrim(self.dead_letter, 0, self.settings.dead_letter_max - 1)
                pipe.expire(self.dead_letter, self.settings.dead_letter_ttl_s)
                await pipe.execute()
        WRITTEN.inc(len(rows))

    async def run(self) -> None:
        """Drain until ``stop``; a failed insert is logged, counted and retried with the same batch."""
        await self.recover()
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                await self.drain_once(wait_s=1.0)
                backoff = 0.5
            except Exception as exc:  # any failure: Redis or the database down, the writer must outlive it
                WRITE_ERRORS.inc()
                log.error("analytics writer: %s; batch kept in %s, retrying in %.1f s", exc, self.processing, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                await self._retry_processing()

    async def _retry_processing(self) -> None:
        try:
            await self._give_back(keys=[self.processing, self.queue])
        except (redis.RedisError, OSError) as exc:
            log.error("analytics writer: cannot requeue %s yet: %s", self.processing, exc)

    def start(self) -> asyncio.Task[None]:
        self._stopping.clear()
        self._task = asyncio.create_task(self.run(), name="analytics-writer")
        return self._task

    async def stop(self) -> None:
        """Finish the current batch, store what is queued, and close."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        await self.flush()
        await self._redis.delete(self._heartbeat)
        await self._redis.aclose()
        if self._engine is not None:
            await self._engine.dispose()


def _insert_ignoring_duplicates(engine: AsyncEngine, table: Any, unique: str) -> Any:
    dialect = engine.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=[unique])
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=[unique])
    return insert(table)
