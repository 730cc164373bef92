"""``--since`` / ``--until``: ISO dates and times, epoch seconds, or an age (``90m``, ``24h``, ``7d``)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

__all__ = ["parse_time"]

_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(value: str | None, *, now: float | None = None) -> float | None:
    """Epoch seconds for ``value``; None for None or ''. Naive ISO times are UTC. Raises ValueError."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if match := _AGO.match(text):
        return (now if now is not None else time.time()) - float(match[1]) * _UNIT_S[match[2]]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r}: expected an ISO date/time, epoch seconds, or an age like 24h or 7d") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
