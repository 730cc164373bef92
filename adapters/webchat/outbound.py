"""Reply → the gateway that is waiting for it, through Redis (workers may run on other machines)."""

from __future__ import annotations

import json

from redis.asyncio import Redis

from gateway.envelope import Platform, Reply

__all__ = ["REPLY_CHANNEL", "REPLY_TTL_S", "WebchatSender", "reply_key"]

REPLY_CHANNEL = "patchbay:webchat:replies"
REPLY_TTL_S = 3600


def reply_key(message_key: str) -> str:
    return f"patchbay:webchat:reply:{message_key}"


class WebchatSender:
    platform = Platform.WEBCHAT.value

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def send(self, reply: Reply) -> list[str]:
        payload = json.dumps(reply.to_json())
        # Stored first, then announced: a gateway that missed the announcement (restart, 504) can still fetch it.
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(reply_key(reply.in_reply_to_key), payload, ex=REPLY_TTL_S)
            pipe.publish(REPLY_CHANNEL, payload)
            await pipe.execute()
        return [f"re:{reply.reply_to}"]

    async def aclose(self) -> None:
        return None
