"""Forget a user everywhere the stack keeps something of them: one operation for the CLI and the admin API.

Memory turns (with their index entries and vectors), the emotional state and the voice preference.
Analytics keep only pseudonymised ids (docs/analytics.md), so nothing there names the user.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from gateway.shared.redis_urls import redis_py_url
from gateway.shared.settings import Settings

__all__ = ["Forgotten", "forget_user"]


@dataclass(frozen=True, slots=True)
class Forgotten:
    user_id: str
    memory_turns: int
    emotion_state: bool
    voice_preference: bool


async def forget_user(settings: Settings, user_id: str) -> Forgotten:
    from workers.emotion import EmotionManager
    from workers.memory.embedder import HashEmbedder
    from workers.memory.store import SqlMemory
    from workers.voice.preferences import VoicePreferences

    memory = SqlMemory(settings.sqlalchemy_url, embedder=HashEmbedder())  # deleting needs no model
    try:
        await memory.init()
        turns = await memory.forget_user(user_id)
    finally:
        await memory.aclose()
    redis_url = redis_py_url(settings.effective_redis_url)
    emotions = EmotionManager(redis_url)
    try:
        await emotions.forget_user(user_id)
    finally:
        await emotions.aclose()
    async with Redis.from_url(redis_url) as redis:
        await VoicePreferences(redis).forget_user(user_id)
    return Forgotten(user_id, turns, emotion_state=True, voice_preference=True)
