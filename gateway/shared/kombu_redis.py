"""kombu's Redis transport, with the one fix that keeps a worker alive when Redis restarts.

When the broker connection drops, Celery's consumer calls ``Connection.collect()``, which clears
``transport.client``; it then closes the default channel a second time, and that close restores the
channel's unacked messages through ``Channel._connparams``, which reads ``transport.client.hostname``.
With the client gone that raises ``AttributeError``; not being a connection error, it escapes
kombu's error handling, and Celery stops the worker ("Unrecoverable error"). Reproduced on every
restart of a Redis under workers that had messages delivered but not yet started.

The fix remembers the connection parameters while the client is there, so a late restore or ack on
an old channel either works (Redis is back) or raises a redis ``ConnectionError``, which kombu and
Celery already handle by reconnecting. ``gateway.shared.queue`` selects it: through Celery's
``broker_transport`` for ``redis://`` URLs, and as ``patchbay-redis+socket://`` for unix sockets
(kombu takes the transport of a ``<transport>+socket://`` URL from its prefix, whatever the setting).
"""

from __future__ import annotations

from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

__all__ = ["ALIAS", "Channel", "Transport", "broker_url"]

ALIAS = "patchbay-redis"


class Channel(kombu_redis.Channel):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._saved_connparams: dict[bool, dict[str, Any]] = {}
        super().__init__(*args, **kwargs)
        self._connparams(asynchronous=False)  # remember them now: the sync pool is only built later

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        transport = self.connection
        if transport is not None and transport.client is not None:
            params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)
            self._saved_connparams[asynchronous] = params
            return dict(params)
        try:
            return dict(self._saved_connparams[asynchronous])
        except KeyError:
            raise RedisConnectionError("kombu Redis transport already closed") from None


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    Channel = Channel


TRANSPORT_ALIASES.setdefault(ALIAS, f"{__name__}:Transport")


def broker_url(celery_url: str) -> str:
    """A kombu broker URL (``redis://`` or ``redis+socket://``) that selects this transport."""
    if celery_url.startswith("redis+socket://"):
        return f"{ALIAS}+socket://" + celery_url.removeprefix("redis+socket://")
    return celery_url
