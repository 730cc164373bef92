"""Central send limits in Redis, shared by every worker that talks to a platform.

Platforms limit the *bot*, not one process: ten workers each staying under 30 msg/s would together
get the bot throttled. So every send first asks Redis, in one round trip (a Lua script), whether all
of its limits allow it now; the script answers 0 (go) or how many milliseconds to wait. Limits are
GCRA (generic cell rate algorithm): one key per limit holding the "theoretical arrival time", so
a decision is a handful of GETs and SETs inside the script and no lists grow.

A 429 from the platform sets a shared pause (per platform, or per chat) that every worker's next
``acquire`` honours, so one worker's rate-limit answer slows all of them down.

Rates follow the platforms' limits (docs/decisions.md, "Platform limits"): Telegram about 1 msg/s per chat, 30/s overall and 20/min per group;
Discord 50 requests/s global; Slack about 1 msg/s per channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import redis.asyncio as aioredis

from adapters.base import SendError

__all__ = ["DEFAULT_RATES", "EgressLimits", "PlatformRates", "Rate", "RateLimitedError"]

T = TypeVar("T")


class RateLimitedError(SendError):
    """The platform answered 429. ``whole_platform`` when the limit is the bot's global one (Discord "global")."""

    def __init__(self, message: str, *, retry_after: float, whole_platform: bool = False) -> None:
        super().__init__(message, retry_after=retry_after)
        self.whole_platform = whole_platform


log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` sends per ``period_s`` seconds, allowing a burst of ``burst`` back to back."""

    count: int
    period_s: float
    burst: int = 1

    @property
    def interval_ms(self) -> int:
        return max(1, round(self.period_s * 1000 / self.count))


@dataclass(frozen=True, slots=True)
class PlatformRates:
    overall: Rate | None
    per_chat: Rate | None
    per_group: Rate | None = None  # extra limit for group chats (Telegram)


DEFAULT_RATES: dict[str, PlatformRates] = {
    "telegram": PlatformRates(
        overall=Rate(30, 1.0, burst=30), per_chat=Rate(1, 1.0, burst=3), per_group=Rate(20, 60.0, burst=5)
    ),
    "discord": PlatformRates(overall=Rate(50, 1.0, burst=50), per_chat=Rate(5, 5.0, burst=5)),
    "slack": PlatformRates(overall=None, per_chat=Rate(1, 1.0, burst=3)),
}

# KEYS: pause keys (platform, chat), then one key per limit. ARGV: n_limits, then interval and burst per limit.
# Returns 0 when every limit admits the send (and records it), else the milliseconds to wait.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
for i = 1, 2 do
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl > wait then wait = ttl end
end
if wait > 0 then return wait end
local n = tonumber(ARGV[1])
local new_tats = {}
for i = 1, n do
  local interval = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[2 + i]) or '0')
  if tat < now then tat = now end
  local allow_at = tat - (burst - 1) * interval
  if allow_at > now then
    if allow_at - now > wait then wait = allow_at - now end
  end
  new_tats[i] = tat + interval
end
if wait > 0 then return wait end
for i = 1, n do
  local interval = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  redis.call('SET', KEYS[2 + i], new_tats[i], 'PX', burst * interval + 1000)
end
return 0
"""

# KEYS[1]: the pause key. ARGV[1]: pause length in ms. Only ever lengthens a pause.
_PAUSE = """
local ttl = redis.call('PTTL', KEYS[1])
local ms = tonumber(ARGV[1])
if ttl < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
return ms
"""


class EgressLimits:
    """``await limits.acquire(platform, chat_id, is_group)`` before each send; ``pause`` on a 429."""

    def __init__(
        self, redis_url: str, *, rates: dict[str, PlatformRates] | None = None, prefix: str = "patchbay:egress"
    ) -> None:
        self._redis = aioredis.Redis.from_url(redis_url)
        self._rates = rates or DEFAULT_RATES
        self._prefix = prefix
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._pause = self._redis.register_script(_PAUSE)
        self.waits = 0  # sends that had to wait: exported by the senders' callers as a metric
        self.pauses = 0

    def _pause_keys(self, platform: str, chat_id: str) -> list[str]:
        return [f"{self._prefix}:{platform}:pause", f"{self._prefix}:{platform}:pause:{chat_id}"]

    async def check(self, platform: str, chat_id: str, is_group: bool = False) -> float:
        """One decision: 0.0 when the send may go now (and is counted), else seconds to wait."""
        rates = self._rates.get(platform, PlatformRates(None, None))
        keys = self._pause_keys(platform, chat_id)
        args: list[int] = []
        for name, rate in (("all", rates.overall), ("chat", rates.per_chat), ("group", rates.per_group)):
            if rate is None or (name == "group" and not is_group):
                continue
            keys.append(f"{self._prefix}:{platform}:{name}" + ("" if name == "all" else f":{chat_id}"))
            args += [rate.interval_ms, rate.burst]
        wait_ms = await self._acquire(keys=keys, args=[len(args) // 2, *args])
        return int(wait_ms) / 1000

    async def acquire(self, platform: str, chat_id: str, is_group: bool = False) -> None:
        """Wait (asynchronously) until every limit of this platform and chat admits one more send."""
        while True:
            wait = await self.check(platform, chat_id, is_group)
            if wait <= 0:
                return
            self.waits += 1
            await asyncio.sleep(wait)

    async def pause(self, platform: str, retry_after_s: float, chat_id: str | None = None) -> None:
        """The platform answered 429: make every worker hold this platform (or this chat) for ``retry_after_s``."""
        self.pauses += 1
        key = self._pause_keys(platform, chat_id or "")[0 if chat_id is None else 1]
        log.warning("%s asked us to wait %.2fs (%s); pausing all workers", platform, retry_after_s, chat_id or "global")
        await self._pause(keys=[key], args=[max(1, round(retry_after_s * 1000))])

    async def call(
        self,
        platform: str,
        chat_id: str,
        send: Callable[[], Awaitable[T]],
        *,
        is_group: bool = False,
        max_attempts: int = 5,
    ) -> T:
        """Acquire, run ``send``; on ``SendError(retry_after=...)`` pause everyone, then try again."""
        for attempt in range(1, max_attempts + 1):
            await self.acquire(platform, chat_id, is_group)
            try:
                return await send()
            except SendError as exc:
                if exc.retry_after is None or exc.permanent or attempt == max_attempts:
                    raise
                whole = isinstance(exc, RateLimitedError) and exc.whole_platform
                await self.pause(platform, exc.retry_after, chat_id=None if whole else chat_id)
        raise AssertionError("unreachable: the loop returns or raises")

    async def aclose(self) -> None:
        await self._redis.aclose()
