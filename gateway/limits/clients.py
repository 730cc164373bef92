"""Per-client limits of the web chat, checked at the edge before a message costs anything else.

The web chat is the one public door where the client itself is anonymous: anyone can get a new
session by dropping a cookie. So besides the per-user limits of admission (which a fresh session
resets), each message is also counted per **session** and per **client address** — all sessions
of one address together — so that one client cannot exhaust the shared platform or global limit
and lock real users out. The address is the TCP peer, or the client named in ``X-Forwarded-For``
when the peer is a configured trusted proxy (``PATCHBAY_TRUSTED_PROXIES``, docs/security.md).
Requests with a web chat API key come from one server acting for many users: they skip these
limits and meet the per-user ones.

The same GCRA buckets and one-Lua-call decision as every other limit (``ratelimit.lua``).
"""

from __future__ import annotations

from typing import Literal

import redis.asyncio as aioredis

from gateway.limits.keys import LimitKeys
from gateway.limits.ratelimit import LimitDecision, LimitSpec, parse_limits
from gateway.limits.scripts import ratelimit_script
from gateway.limits.settings import LimitSettings

__all__ = ["ClientLimiter"]

Action = Literal["chat", "rating", "upload"]


class ClientLimiter:
    def __init__(self, redis: aioredis.Redis, settings: LimitSettings | None = None) -> None:
        settings = settings or LimitSettings()
        self._keys = LimitKeys(settings.key_prefix)
        self._specs: dict[Action, list[tuple[str, LimitSpec]]] = {
            "chat": [
                *(("session", spec) for spec in parse_limits("webchat session", settings.webchat_session)),
                *(("address", spec) for spec in parse_limits("webchat address", settings.webchat_address)),
            ],
            "rating": [
                *(("session", spec) for spec in parse_limits("rating session", settings.webchat_rating)),
                *(("address", spec) for spec in parse_limits("rating address", settings.webchat_rating)),
            ],
            "upload": [
                *(("session", spec) for spec in parse_limits("upload session", settings.webchat_upload)),
                *(("address", spec) for spec in parse_limits("upload address", settings.webchat_upload)),
            ],
        }
        self._script = redis.register_script(ratelimit_script())

    async def check(self, action: Action, session: str, address: str) -> LimitDecision:
        """One round trip; spends budget only when every limit allows (a refused request costs nothing)."""
        specs = self._specs[action]
        if not specs:
            return LimitDecision(True)
        who = {"session": session, "address": address}
        keys = [self._keys.bucket(f"webchat-{action}-{kind}", who[kind], spec.key_part) for kind, spec in specs]
        args: list[str | int] = ["", len(specs)]
        for _, spec in specs:
            args += [spec.amount, spec.period_s * 1000]
        args += [f"webchat:{session}", *range(1, len(keys) + 1)]
        allowed, hit, retry_ms, notify = (int(x) for x in await self._script(keys=keys, args=args))
        if allowed:
            return LimitDecision(True)
        return LimitDecision(False, str(specs[hit - 1][1]), retry_ms / 1000, bool(notify))
