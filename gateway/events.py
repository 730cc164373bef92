"""Analytics events leave the message path as one LPUSH; the gateway's writer stores them in SQL later."""

from __future__ import annotations

import json
import logging
from typing import Any

from redis.asyncio import Redis

__all__ = ["EVENTS_KEY", "emit_event"]

log = logging.getLogger(__name__)

EVENTS_KEY = "patchbay:analytics:events"


async def emit_event(redis: Redis, event: dict[str, Any]) -> None:
    """Queue one event; a Redis failure loses the event (logged), never the message."""
    try:
        await redis.lpush(EVENTS_KEY, json.dumps(event, default=str))
    except Exception as exc:
        log.warning("analytics event lost kind=%s key=%s error=%r", event.get("kind"), event.get("key"), exc)
