"""Sticky percentage rollout, Unleash's gradual-rollout rule (docs/decisions.md, "How rollout hashing works").

``bucket = murmur3_32(f"{patch}:{user_id}", seed=0) % 100 + 1`` and a user is inside when
``bucket <= percent``. Hashing the patch name with the user makes patches pick different users;
a user's bucket never changes, so raising the percentage only ever adds users. This module is the
one place the rule is written; every layer asks ``in_rollout``.
"""

from __future__ import annotations

from functools import lru_cache

import mmh3

__all__ = ["bucket", "in_rollout"]


@lru_cache(maxsize=65536)  # the hot path asks for the same active users again and again
def bucket(patch: str, user_id: str) -> int:
    """The user's bucket for this patch, 1..100."""
    return mmh3.hash(f"{patch}:{user_id}", 0, signed=False) % 100 + 1


def in_rollout(patch: str, user_id: str | None, percent: float) -> bool:
    """Whether ``user_id`` gets ``patch`` at ``percent``; without a user only 100% counts as inside."""
    if percent >= 100.0:
        return True
    if percent <= 0.0 or user_id is None:
        return False
    return bucket(patch, user_id) <= percent
