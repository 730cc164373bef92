"""Reply → the gateway that is waiting for it, through Redis (workers may run on other machines)."""

from __future__ import annotations

import json

from redis.asyncio import Redis

from gateway.shared.envelope import Platform, Reply
from gateway.shared.identity import user_key
from gateway.shared.keys import WEBCHAT_REPLY_CHANNEL, webchat_reply, webchat_user_replies

__all__ = ["REPLY_CHANNEL", "REPLY_TTL_S", "WebchatSender", "reply_key"]

REPLY_CHANNEL = WEBCHAT_REPLY_CHANNEL
REPLY_TTL_S = 3600


reply_key = webchat_reply


class WebchatSender:
    platform = Platform.WEBCHAT.value

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def send(self, reply: Reply) -> list[str]:
        payload = json.dumps(reply.to_json())
        stored = reply_key(reply.in_reply_to_key)
        # Stored first, then announced: a gateway that missed the announcement (restart, 504) can still fetch it.
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(stored, payload, ex=REPLY_TTL_S)
            user = reply.hints.get("user")
            if isinstance(user, str) and user:
                index = webchat_user_replies(user_key(reply.platform, reply.bot_id, user))
                pipe.sadd(index, stored)
                pipe.expire(index, REPLY_TTL_S)
            pipe.publish(REPLY_CHANNEL, payload)
            await pipe.execute()
        return [f"re:{reply.reply_to}"]

    async def aclose(self) -> None:
        return None
