"""Run by test_limits in a separate process: hammer one user's limit and print how many got through."""

from __future__ import annotations

import asyncio
import sys

from gateway.limits import LimitSettings, RateLimiter


async def main(url: str, attempts: int, now: float) -> None:
    settings = LimitSettings(user="50/hour", conversation="", platform="", global_="")
    limiter = RateLimiter.from_url(url, settings)
    allowed = notices = 0
    for _ in range(attempts):
        decision = await limiter.check("discord", "bot", "c1", "shared-user", now=now)
        allowed += decision.allowed
        notices += decision.notify
    print(allowed, notices)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
