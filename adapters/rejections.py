"""Platform deliveries refused before they became an envelope: counted, logged with the reason, exported.

A malformed Telegram update or a Slack event with fields of the wrong type cannot reach admission (it
is not an ``Envelope``), but it must not vanish either: each is counted in the adapter's health
(``/healthz`` → ``rejected``), in ``patchbay_platform_rejected_total{platform}`` on ``/metrics``, and
logged with its reason (escaped: the reason may quote the payload).
"""

from __future__ import annotations

import logging

from prometheus_client import Counter

__all__ = ["REJECTED", "record_rejection"]

log = logging.getLogger(__name__)

REJECTED = Counter(
    "patchbay_platform_rejected_total", "platform deliveries refused before admission (malformed)", ["platform"]
)


def record_rejection(platform: str, counters: dict[str, int], reason: str) -> None:
    counters["rejected"] = counters.get("rejected", 0) + 1
    REJECTED.labels(platform).inc()
    log.warning("%s: delivery rejected: %s", platform, reason)
