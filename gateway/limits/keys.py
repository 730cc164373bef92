"""Every Redis key this package uses, in one place (docs/rate-limits.md lists them)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LimitKeys", "subject"]


def subject(platform: str, identifier: str) -> str:
    """A user or conversation id is only unique within its platform."""
    return f"{platform}:{identifier}"


@dataclass(frozen=True, slots=True)
class LimitKeys:
    prefix: str = "pb"

    def bucket(self, scope: str, who: str, spec: str) -> str:
        """A limit's GCRA bucket; the Lua scripts add ``<bucket>:notice:<user>`` for the notice-once marker."""
        return f"{self.prefix}:rl:{scope}:{who}:{spec}"

    @property
    def blocked_users(self) -> str:
        return f"{self.prefix}:blocks:user"

    @property
    def blocked_conversations(self) -> str:
        return f"{self.prefix}:blocks:conversation"

    def mute(self, user: str) -> str:
        return f"{self.prefix}:abuse:mute:{user}"

    def flood(self, user: str) -> str:
        return f"{self.prefix}:abuse:flood:{user}"

    def spam(self, user: str, text_hash: str) -> str:
        return f"{self.prefix}:abuse:spam:{user}:{text_hash}"
