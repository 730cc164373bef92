"""Central rate limits shared by every gateway and worker process: one Lua call per decision.

Limits apply per user, per conversation, per platform and globally; each scope may carry several
windows (``"6/minute;60/hour"``). The script evaluates all of them atomically with GCRA (see
gcra.lua for why) and only spends budget when every limit allows, so a refused message costs the
user nothing. The same call decides whether the user should see a notice: at most once per window
per user and limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import limits
import redis.asyncio as aioredis

from gateway.limits.keys import LimitKeys, subject
from gateway.limits.scripts import ratelimit_script
from gateway.limits.settings import LimitSettings
from gateway.shared.identity import user_key

__all__ = ["LimitDecision", "LimitRequest", "LimitSpec", "RateLimiter", "parse_limits"]


@dataclass(frozen=True, slots=True)
class LimitSpec:
    scope: str  # user | conversation | platform | global
    amount: int
    period_s: int

    @property
    def key_part(self) -> str:
        return f"{self.amount}/{self.period_s}s"

    def __str__(self) -> str:
        return f"{self.scope} {self.amount} per {_period_text(self.period_s)}"


def _period_text(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return f"{seconds} s"


def parse_limits(scope: str, notation: str) -> list[LimitSpec]:
    """``"6/minute;60/hour"`` → specs; '' → none. Raises ValueError on bad notation, naming the scope."""
    if not notation.strip():
        return []
    try:
        items = limits.parse_many(notation)
    except ValueError as exc:
        raise ValueError(f"bad {scope} limit {notation!r}: {exc}") from None
    return [LimitSpec(scope, item.amount, item.get_expiry()) for item in items]


@dataclass(frozen=True, slots=True)
class LimitRequest:
    platform: str
    bot_id: str
    conversation_id: str
    user_id: str
    user_key: str = ""  # the qualified user (gateway.shared.identity); derived from the fields above when ""

    @property
    def user(self) -> str:
        return self.user_key or user_key(self.platform, self.bot_id, self.user_id)


@dataclass(frozen=True, slots=True)
class LimitDecision:
    allowed: bool
    limit: str | None = None  # which limit refused, e.g. "user 6 per minute"
    retry_after_s: float = 0.0
    notify: bool = False  # show the user a notice: true at most once per window per user and limit


ALLOWED = LimitDecision(True)


class RateLimiter:
    def __init__(self, redis: aioredis.Redis, settings: LimitSettings | None = None) -> None:
        settings = settings or LimitSettings()
        self._redis = redis
        self._keys = LimitKeys(settings.key_prefix)
        self.specs: list[LimitSpec] = [
            *parse_limits("user", settings.user),
            *parse_limits("conversation", settings.conversation),
            *parse_limits("platform", settings.platform),
            *parse_limits("global", settings.global_),
        ]
        self._script = redis.register_script(ratelimit_script())

    @classmethod
    def from_url(cls, url: str, settings: LimitSettings | None = None) -> RateLimiter:
        return cls(aioredis.Redis.from_url(url), settings)

    def bucket_keys(self, request: LimitRequest) -> list[str]:
        """The bucket of each limit for this message (the Guard embeds them in its own script)."""
        who = {
            "user": request.user,
            "conversation": subject(request.platform, request.conversation_id),
            "platform": request.platform,
            "global": "all",
        }
        return [self._keys.bucket(spec.scope, who[spec.scope], spec.key_part) for spec in self.specs]

    def spec_args(self) -> list[int]:
        args: list[int] = []
        for spec in self.specs:
            args += [spec.amount, spec.period_s * 1000]
        return args

    def decision(self, hit: int, retry_ms: int, notify: int) -> LimitDecision:
        if hit == 0:
            return ALLOWED
        return LimitDecision(False, str(self.specs[hit - 1]), retry_ms / 1000, bool(notify))

    def _pack(self, requests: Sequence[LimitRequest], now: float | None) -> tuple[list[str], list[str | int]]:
        # Distinct keys only: a batch shares its platform and global buckets, which Lua then reads once.
        index: dict[str, int] = {}
        args: list[str | int] = [_now_arg(now), len(self.specs), *self.spec_args()]
        for request in requests:
            args.append(request.user)
            for key in self.bucket_keys(request):
                args.append(index.setdefault(key, len(index) + 1))
        return list(index), args

    def _decisions(self, flat: list[int]) -> list[LimitDecision]:
        return [self.decision(int(flat[i + 1]), int(flat[i + 2]), int(flat[i + 3])) for i in range(0, len(flat), 4)]

    async def check(
        self, platform: str, bot_id: str, conversation_id: str, user_id: str, *, now: float | None = None
    ) -> LimitDecision:
        """One round trip. ``now`` (epoch s) is for tests; by default the Redis server's clock is used,
        so processes on machines with skewed clocks still share one timeline."""
        if not self.specs:
            return ALLOWED
        keys, args = self._pack([LimitRequest(platform, bot_id, conversation_id, user_id)], now)
        return self._decisions(await self._script(keys=keys, args=args))[0]

    async def check_many(
        self, requests: Sequence[LimitRequest], *, now: float | None = None, chunk: int = 250
    ) -> list[LimitDecision]:
        """Decisions for many messages, in order, as if checked one by one: chunks of ``chunk`` decisions per
        Lua call (each chunk atomic), all chunks pipelined in one round trip."""
        if not self.specs:
            return [ALLOWED] * len(requests)
        async with self._redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(requests), chunk):
                keys, args = self._pack(requests[start : start + chunk], now)
                await self._script(keys=keys, args=args, client=pipe)
            results = await pipe.execute()
        return [decision for flat in results for decision in self._decisions(flat)]


def _now_arg(now: float | None) -> str:
    return "" if now is None else str(int(now * 1000))
