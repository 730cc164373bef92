"""Redis URLs as each client spells them: redis-py says ``unix://``, kombu says ``redis+socket://``."""

from __future__ import annotations

__all__ = ["celery_url", "redis_py_url"]


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
