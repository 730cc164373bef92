"""The analytics event format, and how any process puts an event on the queue: one LPUSH, off the reply path.

The gateway's analytics writer (``gateway.analytics``) moves events from this list to SQL later; a
producer needs only this module, so a worker never imports the export or summary code.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from functools import cache
from typing import Any, ClassVar

from prometheus_client import Counter
from pydantic import AliasChoices, Field
from redis.asyncio import Redis

from gateway.shared.config import PatchbaySettings
from gateway.shared.keys import ANALYTICS_QUEUE
from gateway.shared.logs import redact

__all__ = ["EMIT_FAILURES", "EventSettings", "emit_event", "encode_event", "events_queue"]

log = logging.getLogger(__name__)

EMIT_FAILURES = Counter("patchbay_analytics_emit_failures_total", "analytics events lost at emit", ["kind"])


class EventSettings(PatchbaySettings):
    """Where events are queued (``[analytics]`` in patchbay.toml); the writer's settings extend this."""

    TOML_SECTION: ClassVar[str] = "analytics"

    queue: str = Field(
        default=ANALYTICS_QUEUE,
        validation_alias=AliasChoices("PATCHBAY_ANALYTICS_QUEUE", "queue"),
        description="the Redis list producers LPUSH events onto",
    )


def encode_event(event: Mapping[str, Any]) -> str:
    """JSON with an ``event_id`` (for idempotent inserts) and ``ts_emit`` added when missing."""
    if "kind" not in event:
        raise ValueError("an analytics event needs a 'kind' (message, reply or reaction)")
    body = dict(event)
    body.setdefault("event_id", uuid.uuid4().hex)
    body.setdefault("ts_emit", time.time())
    # Events end up in exports: an error message that quoted a token must not carry it there.
    return redact(json.dumps(body, separators=(",", ":"), default=str))


@cache
def events_queue() -> str:
    return EventSettings().queue


async def emit_event(redis: Redis, event: dict[str, Any]) -> None:
    """Queue one event on a client the caller already holds; a failure loses the event (counted, logged), never the message."""
    try:
        await redis.lpush(events_queue(), encode_event(event))
    except Exception as exc:
        EMIT_FAILURES.labels(str(event.get("kind"))).inc()
        log.warning("analytics event lost kind=%s key=%s error=%r", event.get("kind"), event.get("key"), exc)
