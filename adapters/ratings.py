"""Where an adapter's 👍/👎 reactions go: the rating sink, with every reaction not recorded counted by reason."""

from __future__ import annotations

import logging
from typing import Any

from adapters.base import Rate, Rating

__all__ = ["RatingDesk"]

log = logging.getLogger(__name__)


class RatingDesk:
    def __init__(self, platform: str) -> None:
        self.platform = platform
        self.rate: Rate | None = None
        self.ratings = 0
        self.rating_errors = 0
        self.ignored: dict[str, int] = {}

    def ignore(self, reason: str) -> None:
        self.ignored[reason] = self.ignored.get(reason, 0) + 1

    async def record(self, rating: Rating) -> None:
        if self.rate is None:
            self.ignore("no_rating_sink")
            log.warning("%s: a rating arrived but no rating sink was given to start(); dropped", self.platform)
            return
        try:
            await self.rate(rating)
        except Exception:
            # A failing analytics sink must not take the platform connection down; the loss is counted and logged.
            self.rating_errors += 1
            log.exception("%s: could not record %s", self.platform, rating)
            return
        self.ratings += 1

    def figures(self) -> dict[str, Any]:
        """For ``health().extra``."""
        return {
            "ratings": self.ratings,
            "rating_errors": self.rating_errors,
            "reactions_ignored": sum(self.ignored.values()),
            "ignored_reactions": dict(self.ignored),
        }
