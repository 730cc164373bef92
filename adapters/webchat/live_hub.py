"""Gateway side of streamed web chat replies: one subscription feeds every page that waits for text.

Workers announce the text so far of a reply on ``WEBCHAT_STREAM_CHANNEL`` (``adapters.webchat.live``);
this hub keeps one pub/sub subscription per gateway process and hands each announcement to the
queues of the requests streaming that message. Announcements carry the whole text so far, so a
queue keeps only the newest (a slow page skips ahead, it never falls behind), and a page that
starts late reads the stored latest text first. The final reply still comes from ``ReplyWaiter``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from redis.asyncio import Redis

from adapters.webchat.subscription import subscribe_forever
from gateway.shared.keys import WEBCHAT_STREAM_CHANNEL, webchat_stream

__all__ = ["LiveHub"]

log = logging.getLogger(__name__)


class LiveHub:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._listeners: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="webchat-live")
        await asyncio.wait_for(self._subscribed.wait(), timeout=10)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def listen(self, message_key: str) -> asyncio.Queue[dict[str, Any]]:
        """Register before admission, so the first words cannot slip past."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1)
        self.listen_with(message_key, queue)
        return queue

    def listen_with(self, message_key: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._listeners.setdefault(message_key, set()).add(queue)

    def forget(self, message_key: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        queues = self._listeners.get(message_key)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._listeners[message_key]

    async def latest(self, message_key: str) -> dict[str, Any] | None:
        raw = await self.redis.get(webchat_stream(message_key))
        return json.loads(raw) if raw else None

    async def _listen(self) -> None:
        # A lost subscription costs partial text only: the final reply has its own path.
        await subscribe_forever(
            self.redis, WEBCHAT_STREAM_CHANNEL, self._deliver, subscribed=self._subscribed, what="web chat stream"
        )

    def _deliver(self, data: object) -> None:
        try:
            event = json.loads(data)  # type: ignore[arg-type]
            key = str(event["key"])
        except (ValueError, TypeError, KeyError) as exc:
            log.error("malformed web chat stream event: %r", exc)
            return
        for queue in self._listeners.get(key, ()):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()  # only the newest text matters
            queue.put_nowait(event)
