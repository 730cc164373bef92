"""Who gets voice replies, in Redis: a user's ``/voice on|off`` and the operator's switch per conversation.

Shared because both sides use it: workers read and set it while answering, the admin API sets a
conversation's switch and never needs worker code for it. Users are platform-qualified keys
(``telegram:1001``; ``gateway.shared.identity``), so a web chat user named ``1001`` turning voice on
never turns it on for Telegram user 1001.
"""

from __future__ import annotations

from redis.asyncio import Redis

from gateway.shared.keys import VOICE_PREFIX, voice_conversation, voice_user

__all__ = ["VoicePreferences"]


class VoicePreferences:
    def __init__(self, redis: Redis, *, key_prefix: str = VOICE_PREFIX) -> None:
        self._redis = redis
        self._prefix = key_prefix

    def _user_key(self, user_key: str) -> str:
        return voice_user(user_key, self._prefix)

    def _conversation_key(self, conversation_key: str) -> str:
        return voice_conversation(conversation_key, self._prefix)

    async def set_user(self, user_key: str, enabled: bool) -> None:
        await self._redis.set(self._user_key(user_key), b"1" if enabled else b"0")

    async def user_enabled(self, user_key: str) -> bool:
        return await self._redis.get(self._user_key(user_key)) == b"1"

    async def set_conversation(self, conversation_key: str, enabled: bool) -> None:
        """The operator's switch: every reply in this conversation is spoken while it is on."""
        if enabled:
            await self._redis.set(self._conversation_key(conversation_key), b"1")
        else:
            await self._redis.delete(self._conversation_key(conversation_key))

    async def conversation_enabled(self, conversation_key: str) -> bool:
        return await self._redis.get(self._conversation_key(conversation_key)) == b"1"

    async def should_speak(self, user_key: str, conversation_key: str, inbound_was_voice: bool) -> bool:
        """Speak when the user sent a voice message, asked for voice, or the operator turned it on here."""
        if inbound_was_voice:
            return True
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(self._user_key(user_key))
            pipe.get(self._conversation_key(conversation_key))
            user_flag, conversation_flag = await pipe.execute()
        return user_flag == b"1" or conversation_flag == b"1"

    async def forget_user(self, user_key: str) -> bool:
        """True when there was a preference to delete."""
        return bool(await self._redis.delete(self._user_key(user_key)))
