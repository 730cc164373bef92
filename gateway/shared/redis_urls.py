"""Redis URLs as each client spells them (redis-py says ``unix://``, kombu ``redis+socket://``), and the client.

``redis_client`` is how every process opens Redis: a connection that went stale because Redis
restarted, or a Redis still replaying its AOF, is retried on a fresh connection with a short backoff
instead of failing the caller's operation; long outages are the caller's to wait out.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

__all__ = ["celery_url", "redis_client", "redis_py_url"]

# About 3 s of retries in all: long enough for a restart on the same host, short enough for callers' own loops.
_RETRY = Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=6)
_RETRY_ON = [ConnectionError, TimeoutError, BusyLoadingError]


def redis_client(url: str, **options: Any) -> Redis:
    """An asyncio Redis client for ``url`` (any spelling) that rides out reconnects; options go to redis-py."""
    options.setdefault("retry", _RETRY)
    options.setdefault("retry_on_error", _RETRY_ON)
    options.setdefault("health_check_interval", 15)
    options.setdefault("socket_connect_timeout", 5)
    return Redis.from_url(redis_py_url(url), **options)


def redis_py_url(url: str) -> str:
    """Normalise any accepted Redis URL for redis-py (``redis+socket://`` → ``unix://``)."""
    if url.startswith("redis+socket://"):
        return "unix://" + url[len("redis+socket://") :]
    return url


def celery_url(url: str) -> str:
    """Normalise any accepted Redis URL for kombu, which spells unix sockets ``redis+socket://``."""
    if url.startswith("unix://"):
        return "redis+socket://" + url[len("unix://") :]
    return url
