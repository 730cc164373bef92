"""Who the current call is for, and what every patch layer did with it.

The worker enters ``call_context`` once per message; patch layers read it (rollout needs the user)
and append one ``TraceEntry`` per guarded call, so analytics can tell which enhancements served a
message and which fell back. A ``ContextVar`` follows the message across ``await`` points and tasks
without threading it through every component signature.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Final, Literal, NamedTuple

__all__ = [
    "APPLIED",
    "FALLBACK",
    "SKIPPED",
    "CallContext",
    "Outcome",
    "TraceEntry",
    "call_context",
    "current_call",
    "current_trace",
]

Outcome = Literal["applied", "fallback", "skipped"]
APPLIED: Final = "applied"
FALLBACK: Final = "fallback"
SKIPPED: Final = "skipped"  # switched off, outside the rollout, or auto-disabled by the health monitor


class TraceEntry(NamedTuple):  # a tuple: built on every guarded call, and a frozen dataclass costs 5x more
    patch: str
    method: str
    outcome: Outcome
    reason: str  # "" when applied; why it was skipped or fell back otherwise
    elapsed_ms: float  # time spent in the enhancement (0 when skipped)


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


def current_call() -> CallContext | None:
    return _current.get()


def current_trace() -> list[TraceEntry]:
    """The current message's trace; a new empty list when no call context is active."""
    context = _current.get()
    return context.trace if context is not None else []
