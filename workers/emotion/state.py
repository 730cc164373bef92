"""Per-user emotional state in Redis, decaying exponentially toward neutral.

The state is a probability vector over the seven classes plus the time it was written. Reading
it applies the decay for the time elapsed since, so nothing has to tick in the background and
every worker computes the same state from the same key. Writes use WATCH/MULTI so two workers
observing the same user at once cannot lose one of the observations.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping

from redis.asyncio import Redis
from redis.exceptions import WatchError

from gateway.shared.keys import emotion_state
from workers.components import EmotionReading
from workers.emotion.labels import EMOTIONS, NEUTRAL

__all__ = ["EmotionStateStore", "decay_toward_neutral", "reading_from_scores"]

_MAX_WRITE_ATTEMPTS = 10


def decay_toward_neutral(scores: Mapping[str, float], elapsed_s: float, half_life_s: float) -> dict[str, float]:
    """Each non-neutral share halves every ``half_life_s``; what it loses goes to neutral."""
    keep = 0.5 ** (max(elapsed_s, 0.0) / half_life_s)
    decayed = {e: keep * scores.get(e, 0.0) for e in EMOTIONS}
    decayed[NEUTRAL] += 1.0 - keep
    return decayed


def reading_from_scores(scores: Mapping[str, float]) -> EmotionReading:
    total = sum(scores.values()) or 1.0
    normalised = {e: scores.get(e, 0.0) / total for e in EMOTIONS}
    label = max(normalised, key=normalised.__getitem__)
    return EmotionReading(label, normalised[label], normalised)


def _neutral() -> dict[str, float]:
    return {e: float(e == NEUTRAL) for e in EMOTIONS}


class EmotionStateStore:
    def __init__(
        self,
        redis: Redis,
        *,
        half_life_s: float,
        observation_weight: float,
        key_prefix: str = "patchbay:emotion:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._half_life_s = half_life_s
        self._weight = observation_weight
        self._prefix = key_prefix
        self._clock = clock
        # After 20 half-lives less than 1e-6 of any emotion is left: the key can go.
        self._ttl_s = max(int(half_life_s * 20), 1)

    def _key(self, user_id: str) -> str:
        # user_id is the platform-qualified user key (gateway.shared.identity): web 1001 is not Telegram 1001.
        return emotion_state(user_id, self._prefix)

    def _decode(self, raw: bytes | str | None, now: float) -> dict[str, float]:
        if raw is None:
            return _neutral()
        stored = json.loads(raw)
        return decay_toward_neutral(stored["scores"], now - float(stored["at"]), self._half_life_s)

    async def state(self, user_id: str) -> EmotionReading:
        now = self._clock()
        return reading_from_scores(self._decode(await self._redis.get(self._key(user_id)), now))

    async def observe(self, user_id: str, reading: EmotionReading) -> EmotionReading:
        observed = reading.scores or {reading.label: 1.0}
        key = self._key(user_id)
        for _attempt in range(_MAX_WRITE_ATTEMPTS):
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    now = self._clock()
                    current = self._decode(await pipe.get(key), now)
                    blended = {
                        e: (1 - self._weight) * current[e] + self._weight * observed.get(e, 0.0) for e in EMOTIONS
                    }
                    new_state = reading_from_scores(blended)
                    pipe.multi()
                    pipe.set(key, json.dumps({"scores": new_state.scores, "at": now}), ex=self._ttl_s)
                    await pipe.execute()
                    return new_state
                except WatchError:
                    continue  # another worker wrote this user's state in between: re-read and blend again
        raise RuntimeError(f"emotion state of {user_id!r} kept changing under {_MAX_WRITE_ATTEMPTS} write attempts")

    async def forget(self, user_id: str) -> bool:
        """True when there was a state to delete."""
        return bool(await self._redis.delete(self._key(user_id)))
