"""One Redis pub/sub subscription per gateway process, kept alive across Redis restarts.

Both web chat channels (final replies, streamed text) use it. redis-py re-subscribes silently after
a reconnect, so ``on_resubscribe`` is where a caller picks up what was announced while it was away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

__all__ = ["subscribe_forever"]

log = logging.getLogger(__name__)


async def subscribe_forever(
    redis: Redis,
    channel: str,
    deliver: Callable[[object], None],
    *,
    subscribed: asyncio.Event,
    what: str,
    on_resubscribe: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Feed every message on ``channel`` to ``deliver`` until cancelled; a lost subscription is logged and renewed."""
    delay = 0.5
    while True:
        try:
            async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(channel)
                if subscribed.is_set() and on_resubscribe is not None:
                    await on_resubscribe()
                subscribed.set()
                delay = 0.5
                async for message in pubsub.listen():
                    deliver(message.get("data"))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s subscription lost (%r); resubscribing in %.1fs", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)
