"""Which failures are the infrastructure's (Redis, the database), and waiting them out (gateway and workers alike).

Such a failure is never the message's fault: the message is kept (the ledger holds it) and answered
once the infrastructure is back, instead of being answered with an apology or acknowledged as done.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.exceptions
import sqlalchemy.exc

__all__ = ["is_infrastructure_error", "retry_infrastructure"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# BusyLoadingError (a restarted Redis replaying its AOF) is a ConnectionError subclass; ReadOnlyError is a
# failover in progress; OOM is a full Redis refusing writes (noeviction) until the backlog drains.
_REDIS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.ReadOnlyError)
# asyncio's words when a write meets a socket that closed under it: redis-py's health check on a
# connection Redis dropped while restarting raises this RuntimeError instead of a ConnectionError.
_CLOSED_TRANSPORT = "unable to perform operation on"
_DATABASE = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.DisconnectionError)


def is_infrastructure_error(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _REDIS + _DATABASE + (ConnectionError,)):
            return True
        if isinstance(current, redis.exceptions.ResponseError) and str(current).startswith("OOM"):
            return True
        if isinstance(current, RuntimeError) and _CLOSED_TRANSPORT in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


async def retry_infrastructure(call: Callable[[], Awaitable[T]], what: str, *, give_up_after_s: float = 30.0) -> T:
    """``await call()``, retrying infrastructure failures with backoff for up to ``give_up_after_s``."""
    deadline = time.monotonic() + give_up_after_s
    delay = 0.1
    attempt = 0
    while True:
        try:
            return await call()
        except Exception as exc:
            if not is_infrastructure_error(exc) or time.monotonic() + delay > deadline:
                raise
            attempt += 1
            if attempt == 1 or attempt % 10 == 0:
                log.warning("%s: infrastructure unavailable (%r); retrying", what, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
