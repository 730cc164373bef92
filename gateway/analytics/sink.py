"""Producers' side: one LPUSH of a JSON event onto a Redis list, off the reply path's critical work.

A failed emit never breaks a reply: it is counted (``patchbay_analytics_emit_failures_total``)
and logged, and the reply goes out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import redis
import redis.asyncio as aioredis
from prometheus_client import Counter

from gateway.analytics.settings import AnalyticsSettings
from gateway.shared.events import EMIT_FAILURES, encode_event
from gateway.shared.redis_urls import redis_py_url

__all__ = ["EMIT_FAILURES", "EventSink", "encode_event"]

log = logging.getLogger(__name__)

EMITTED = Counter("patchbay_analytics_events_emitted_total", "analytics events pushed to Redis", ["kind"])


class EventSink:
    def __init__(self, redis_url: str, settings: AnalyticsSettings | None = None) -> None:
        self.queue = (settings or AnalyticsSettings()).queue
        self._url = redis_py_url(redis_url)
        self._async: aioredis.Redis | None = None
        self._sync: redis.Redis | None = None

    async def emit(self, event: Mapping[str, Any]) -> bool:
        """Push one event; False (counted and logged) if Redis refused it."""
        kind = str(event.get("kind"))
        try:
            if self._async is None:
                self._async = aioredis.Redis.from_url(self._url)
            await self._async.lpush(self.queue, encode_event(event))
        except (redis.RedisError, OSError, ValueError, TypeError) as exc:
            return self._failed(kind, exc)
        EMITTED.labels(kind).inc()
        return True

    def emit_sync(self, event: Mapping[str, Any]) -> bool:
        kind = str(event.get("kind"))
        try:
            if self._sync is None:
                self._sync = redis.Redis.from_url(self._url)
            self._sync.lpush(self.queue, encode_event(event))
        except (redis.RedisError, OSError, ValueError, TypeError) as exc:
            return self._failed(kind, exc)
        EMITTED.labels(kind).inc()
        return True

    def add_to_pipeline(self, pipe: redis.client.Pipeline | aioredis.client.Pipeline, event: Mapping[str, Any]) -> None:
        """Queue the LPUSH on a pipeline the caller already sends, so the event costs no round trip."""
        pipe.lpush(self.queue, encode_event(event))
        EMITTED.labels(str(event.get("kind"))).inc()

    def _failed(self, kind: str, exc: Exception) -> bool:
        EMIT_FAILURES.labels(kind).inc()
        log.warning("analytics event (%s) lost: %s", kind, exc)
        return False

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()
        if self._sync is not None:
            self._sync.close()
