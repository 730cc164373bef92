"""Analytics events leave the message path as one LPUSH; the gateway's writer stores them in SQL later."""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from redis.asyncio import Redis

from gateway.analytics.settings import AnalyticsSettings
from gateway.analytics.sink import EMIT_FAILURES, encode_event

__all__ = ["emit_event", "events_queue"]

log = logging.getLogger(__name__)


@cache
def events_queue() -> str:
    return AnalyticsSettings().queue


async def emit_event(redis: Redis, event: dict[str, Any]) -> None:
    """Queue one event on a client the caller already holds; a failure loses the event (counted, logged), never the message."""
    try:
        await redis.lpush(events_queue(), encode_event(event))
    except Exception as exc:
        EMIT_FAILURES.labels(str(event.get("kind"))).inc()
        log.warning("analytics event lost kind=%s key=%s error=%r", event.get("kind"), event.get("key"), exc)
