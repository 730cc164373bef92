"""``/voice on|off`` per user and the operator's per-conversation switch, in a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis
from redis.asyncio import Redis

from workers.voice import VoicePreferences, parse_voice_command


@pytest.fixture
async def preferences(redis_url: str, redis_client: redis.Redis) -> AsyncIterator[VoicePreferences]:
    client = Redis.from_url(redis_url)
    try:
        yield VoicePreferences(client)
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/voice on", True),
        ("/voice off", False),
        ("  /VOICE On ", True),
        ("/voice@patchbay_bot off", False),
        ("/voice", None),
        ("/voice maybe", None),
        ("please use /voice on", None),
        ("/voiceon", None),
        ("hello", None),
    ],
)
def test_parse_voice_command(text: str, expected: bool | None) -> None:
    assert parse_voice_command(text) is expected


async def test_voice_choice_is_remembered_per_user(preferences: VoicePreferences, redis_url: str) -> None:
    await preferences.set_user("alice", True)
    assert await preferences.should_speak("alice", "webchat:b:c1", inbound_was_voice=False)
    assert not await preferences.should_speak("bob", "webchat:b:c1", inbound_was_voice=False)

    # Another worker with its own connection sees the same choice.
    other = Redis.from_url(redis_url)
    try:
        assert await VoicePreferences(other).user_enabled("alice")
    finally:
        await other.aclose()

    await preferences.set_user("alice", False)
    assert not await preferences.should_speak("alice", "webchat:b:c1", inbound_was_voice=False)


async def test_a_voice_message_is_answered_in_voice(preferences: VoicePreferences) -> None:
    await preferences.set_user("carol", False)
    assert await preferences.should_speak("carol", "telegram:b:c2", inbound_was_voice=True)


async def test_operator_turns_voice_on_for_a_conversation(preferences: VoicePreferences) -> None:
    assert not await preferences.should_speak("dave", "discord:b:c3", inbound_was_voice=False)
    await preferences.set_conversation("discord:b:c3", True)
    assert await preferences.should_speak("dave", "discord:b:c3", inbound_was_voice=False)
    assert not await preferences.should_speak("dave", "discord:b:other", inbound_was_voice=False)
    await preferences.set_conversation("discord:b:c3", False)
    assert not await preferences.should_speak("dave", "discord:b:c3", inbound_was_voice=False)
