"""The web chat's side of a streamed reply: the text so far, pushed through Redis to the gateway.

A worker may run on another machine than the gateway holding the browser's connection, so the
text goes the way the reply goes (``outbound``): the latest text is stored under a short TTL and
announced on one channel; the gateway's ``LiveHub`` passes it to the page's event stream. Every
announcement carries the *whole* text so far, so a missed one costs nothing but a moment. The
final reply is the ordinary one (``WebchatSender``): stored, announced, and kept for an hour; the
text so far is deleted then.
There is nothing to resume after a worker dies: the redelivered message writes the same key.
"""

from __future__ import annotations

import json

from redis.asyncio import Redis

from adapters.egress_limits import EgressLimits
from adapters.webchat.outbound import WebchatSender
from gateway.shared.envelope import Reply
from gateway.shared.keys import WEBCHAT_STREAM_CHANNEL, webchat_stream

__all__ = ["STREAM_TTL_S", "WebchatLive"]

STREAM_TTL_S = 300


class WebchatLive:
    platform = "webchat"
    is_group = False
    typing_every_s: float | None = 5.0
    limits: EgressLimits | None = None

    def __init__(self, redis: Redis, stub: Reply, interval_s: float) -> None:
        self.redis = redis
        self.key = stub.in_reply_to_key
        self.chat_id = stub.conversation_id
        self.interval_s: float | None = interval_s
        self._sender = WebchatSender(redis)
        self._seq = 0

    def handle(self) -> str:
        return ""

    async def _announce(self, event: dict[str, object]) -> None:
        self._seq += 1
        payload = json.dumps({"key": self.key, "seq": self._seq, **event})
        async with self.redis.pipeline(transaction=False) as pipe:
            if "text" in event:
                pipe.set(webchat_stream(self.key), payload, ex=STREAM_TTL_S)
            pipe.publish(WEBCHAT_STREAM_CHANNEL, payload)
            await pipe.execute()

    async def typing(self) -> None:
        await self._announce({"typing": True})

    async def show(self, text: str) -> None:
        await self._announce({"text": text})

    async def finish(self, reply: Reply) -> list[str]:
        sent = await self._sender.send(reply)
        # The reply is stored now: the text so far is no longer needed, and forgetting a user finds
        # only the stored reply (its per-user index), so no copy of their words outlives it.
        await self.redis.delete(webchat_stream(self.key))
        return sent
