"""Who gets voice replies: ``/voice on|off`` per user, operator voice-on per conversation, both in Redis."""

from __future__ import annotations

import re

from redis.asyncio import Redis

__all__ = ["VoicePreferences", "parse_voice_command"]

_COMMAND = re.compile(r"^\s*/voice(?:@\w+)?(?:\s+(\S+))?\s*$", re.IGNORECASE)
_ON = frozenset({"on", "yes", "enable", "enabled", "true", "1"})
_OFF = frozenset({"off", "no", "disable", "disabled", "false", "0"})


def parse_voice_command(text: str) -> bool | None:
    """True for ``/voice on``, False for ``/voice off``, None when the text is not such a command.

    ``/voice@botname on`` (Telegram's form in groups) counts too; ``/voice`` with an unknown or
    missing argument is not a command, so the worker can answer with usage instead of guessing.
    """
    match = _COMMAND.match(text)
    if not match or match.group(1) is None:
        return None
    word = match.group(1).lower()
    if word in _ON:
        return True
    if word in _OFF:
        return False
    return None


class VoicePreferences:
    def __init__(self, redis: Redis, *, key_prefix: str = "patchbay:voice:") -> None:
        self._redis = redis
        self._prefix = key_prefix

    def _user_key(self, user_id: str) -> str:
        return f"{self._prefix}user:{user_id}"

    def _conversation_key(self, conversation_key: str) -> str:
        return f"{self._prefix}conversation:{conversation_key}"

    async def set_user(self, user_id: str, enabled: bool) -> None:
        await self._redis.set(self._user_key(user_id), b"1" if enabled else b"0")

    async def user_enabled(self, user_id: str) -> bool:
        return await self._redis.get(self._user_key(user_id)) == b"1"

    async def set_conversation(self, conversation_key: str, enabled: bool) -> None:
        """The operator's switch: every reply in this conversation is spoken while it is on."""
        if enabled:
            await self._redis.set(self._conversation_key(conversation_key), b"1")
        else:
            await self._redis.delete(self._conversation_key(conversation_key))

    async def conversation_enabled(self, conversation_key: str) -> bool:
        return await self._redis.get(self._conversation_key(conversation_key)) == b"1"

    async def should_speak(self, user_id: str, conversation_key: str, inbound_was_voice: bool) -> bool:
        """Speak when the user sent a voice message, asked for voice, or the operator turned it on here."""
        if inbound_was_voice:
            return True
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(self._user_key(user_id))
            pipe.get(self._conversation_key(conversation_key))
            user_flag, conversation_flag = await pipe.execute()
        return user_flag == b"1" or conversation_flag == b"1"

    async def forget_user(self, user_id: str) -> None:
        await self._redis.delete(self._user_key(user_id))
