"""``EmotionManager``: the ``EmotionReader`` component (classifier + shared decaying state)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from redis.asyncio import Redis

from gateway.shared.redis_urls import redis_py_url
from workers.components import EmotionReading
from workers.emotion.classifier import LexiconEmotionClassifier
from workers.emotion.settings import EmotionSettings
from workers.emotion.state import EmotionStateStore

__all__ = ["EmotionManager"]


class EmotionManager:
    """Reads emotions from text and keeps each user's state in Redis, shared by every worker."""

    def __init__(
        self,
        redis_url: str,
        *,
        settings: EmotionSettings | None = None,
        classifier: LexiconEmotionClassifier | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        settings = settings or EmotionSettings()
        self.settings = settings
        self._redis: Redis = Redis.from_url(redis_py_url(redis_url))
        self._classifier = classifier or LexiconEmotionClassifier()
        self._store = EmotionStateStore(
            self._redis,
            half_life_s=settings.half_life_s,
            observation_weight=settings.observation_weight,
            key_prefix=settings.key_prefix,
            clock=clock,
        )

    async def read(self, text: str) -> EmotionReading:
        # CPU-only and well under a millisecond for chat-sized text, so no thread hop is worth its cost.
        return self._classifier.classify(text)

    async def state(self, user_id: str) -> EmotionReading:
        return await self._store.state(user_id)

    async def observe(self, user_id: str, reading: EmotionReading) -> EmotionReading:
        return await self._store.observe(user_id, reading)

    async def forget_user(self, user_id: str) -> bool:
        return await self._store.forget(user_id)

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def __aenter__(self) -> EmotionManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.shield(self.aclose())
