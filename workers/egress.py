"""Egress: hand a Reply to the platform it came from (called by workers, REST only).

Send limits and 429 handling live in each platform's sender (shared through Redis); here we
only pick the sender and retry what the platform asked us to retry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from adapters.base import Sender, SendError
from adapters.live import LiveStream, LiveTarget, StreamingSettings
from adapters.webchat.live import WebchatLive
from adapters.webchat.outbound import WebchatSender
from gateway.shared.envelope import Platform, Reply

__all__ = ["DeliveryFailed", "Egress"]

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    def __init__(self, message: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class Egress:
    def __init__(self, redis: Redis, redis_url: str, *, attempts: int = 3) -> None:
        self.redis = redis
        self.redis_url = redis_url
        self.attempts = attempts
        self._senders: dict[str, Sender] = {Platform.WEBCHAT.value: WebchatSender(redis)}

    def sender(self, platform: str) -> Sender:
        sender = self._senders.get(platform)
        if sender is None:
            from adapters.senders import sender_for

            sender = sender_for(platform, self.redis_url)
            self._senders[platform] = sender
        return sender

    async def deliver(self, reply: Reply) -> list[str]:
        """Send, retrying briefly when the platform asks; raise ``DeliveryFailed`` when it cannot be sent."""
        try:
            sender = self.sender(reply.platform)
        except Exception as exc:
            raise DeliveryFailed(f"no sender for {reply.platform}: {exc}", permanent=True) from exc
        return await self._retrying(reply, lambda: sender.send(reply))

    def live_target(self, stub: Reply, resume: str, settings: StreamingSettings) -> LiveTarget | None:
        """The platform's live view of the reply ``stub`` addresses, or None where it cannot stream."""
        if stub.platform == Platform.WEBCHAT:
            return WebchatLive(self.redis, stub, settings.webchat_interval_s)
        live = getattr(self.sender(stub.platform), "live", None)
        return live(stub, resume, settings) if live is not None else None

    async def deliver_live(self, live: LiveStream, reply: Reply) -> list[str]:
        """``deliver`` for a reply that was streamed: its final form goes to the same platform message."""
        return await self._retrying(reply, lambda: live.finish(reply))

    async def _retrying(self, reply: Reply, send: Callable[[], Awaitable[list[str]]]) -> list[str]:
        last: SendError | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                return await send()
            except SendError as exc:
                last = exc
                if exc.permanent:
                    break
                wait = exc.retry_after if exc.retry_after is not None else 0.5 * 2 ** (attempt - 1)
                log.warning(
                    "live finish failed platform=%s key=%s attempt=%d error=%s",
                    reply.platform,
                    reply.in_reply_to_key,
                    attempt,
                    exc,
                )
                if attempt < self.attempts:
                    await asyncio.sleep(wait)
        assert last is not None
        raise DeliveryFailed(str(last), permanent=last.permanent, retry_after=last.retry_after)

    async def aclose(self) -> None:
        for sender in self._senders.values():
            await sender.aclose()
