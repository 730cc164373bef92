"""Central rate limiting and abuse prevention, shared through Redis by every process.

Admission calls ``Guard.check(envelope)``; the CLI and the admin API manage the ``BlockList``.
"""

from gateway.limits.blocks import BlockEntry, BlockKind, BlockList
from gateway.limits.guard import Guard, GuardAction, GuardDecision, normalised_text_hash
from gateway.limits.ratelimit import LimitDecision, LimitRequest, LimitSpec, RateLimiter, parse_limits
from gateway.limits.settings import LimitSettings

__all__ = [
    "BlockEntry",
    "BlockKind",
    "BlockList",
    "Guard",
    "GuardAction",
    "GuardDecision",
    "LimitDecision",
    "LimitRequest",
    "LimitSettings",
    "LimitSpec",
    "RateLimiter",
    "normalised_text_hash",
    "parse_limits",
]
