"""Who the current call is for, and what every patch layer did with it.

The worker enters ``call_context`` once per message; patch layers read it (rollout needs the user)
and append one ``TraceEntry`` per guarded call, so analytics can tell which enhancements served a
message, which fell back, and which saw the layer below fail. A ``ContextVar`` follows the message
across ``await`` points and tasks without threading it through every component signature.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Final, Literal, NamedTuple

__all__ = [
    "APPLIED",
    "AUTO_DISABLED",
    "BELOW_FAILED",
    "FAILED_MID_STREAM",
    "FALLBACK",
    "OUTSIDE_ROLLOUT",
    "SKIPPED",
    "SWITCHED_OFF",
    "CallContext",
    "Outcome",
    "TraceEntry",
    "call_context",
    "current_trace",
]

Outcome = Literal["applied", "fallback", "skipped", "below_failed", "failed_mid_stream"]
APPLIED: Final = "applied"
FALLBACK: Final = "fallback"  # the enhancement failed on its own; the layer below answered
SKIPPED: Final = "skipped"  # switched off, outside the rollout, or auto-disabled by the health monitor
BELOW_FAILED: Final = "below_failed"  # the layer below raised: propagated, not charged to the patch
FAILED_MID_STREAM: Final = "failed_mid_stream"  # a stream the enhancement broke after its first chunk

# Why a call was skipped (TraceEntry.reason). Analytics tell a rollout's control group by OUTSIDE_ROLLOUT.
SWITCHED_OFF: Final = "switched off"
OUTSIDE_ROLLOUT: Final = "outside rollout"
AUTO_DISABLED: Final = "auto-disabled"


class TraceEntry(NamedTuple):  # a tuple: built on every guarded call, and a frozen dataclass costs 5x more
    patch: str
    method: str
    outcome: Outcome
    reason: str  # "" when applied; why it was skipped, fell back or failed otherwise
    elapsed_ms: float  # time spent in the enhancement's own work, waits on the layer below excluded (0 if skipped)


@dataclass(slots=True)
class CallContext:
    user_id: str | None = None
    conversation_key: str | None = None
    platform: str | None = None
    trace: list[TraceEntry] = field(default_factory=list)


_current: ContextVar[CallContext | None] = ContextVar("patchbay_call_context", default=None)


@contextmanager
def call_context(
    *, user_id: str | None = None, conversation_key: str | None = None, platform: str | None = None
) -> Iterator[CallContext]:
    """Make a fresh ``CallContext`` current for the block, and restore the previous one after it."""
    context = CallContext(user_id=user_id, conversation_key=conversation_key, platform=platform)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def current_trace() -> list[TraceEntry]:
    """The current message's trace; a new empty list when no call context is active."""
    context = _current.get()
    return context.trace if context is not None else []
