"""Egress: hand a Reply to the platform it came from (called by workers, REST only).

Send limits and 429 handling live in each platform's sender (shared through Redis); here we
only pick the sender and retry what the platform asked us to retry.
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis

from adapters.base import Sender, SendError
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
        last: SendError | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                return await sender.send(reply)
            except SendError as exc:
                last = exc
                if exc.permanent:
                    break
                wait = exc.retry_after if exc.retry_after is not None else 0.5 * 2 ** (attempt - 1)
                log.warning(
                    "send failed platform=%s key=%s attempt=%d error=%s retry_in=%.2fs",
                    reply.platform,
                    reply.in_reply_to_key,
                    attempt,
                    exc,
                    wait,
                )
                if attempt < self.attempts:
                    await asyncio.sleep(wait)
        assert last is not None
        raise DeliveryFailed(str(last), permanent=last.permanent, retry_after=last.retry_after)

    async def aclose(self) -> None:
        for sender in self._senders.values():
            await sender.aclose()
