"""What every platform adapter offers the gateway (inbound) and the workers (outbound).

An adapter knows its platform and the Envelope, nothing of the stack:

- inbound, it turns platform events into ``Envelope`` objects and hands each to ``admit``
  (the gateway's admission: validate, dedupe, limit, enqueue), which says what happened;
- outbound, its ``Sender`` turns a ``Reply`` into platform API calls (split, format, thread)
  and returns the platform ids of what it sent. Senders are REST-only so that a worker on any
  machine can send without holding a platform connection.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from gateway.shared.envelope import Envelope, Reply

__all__ = [
    "BUSY_NOTICE",
    "AdapterState",
    "Admission",
    "Admit",
    "AdmitResult",
    "Health",
    "PlatformAdapter",
    "Rate",
    "Rating",
    "SendError",
    "Sender",
    "rating_value",
]


class Admission(StrEnum):
    """The gateway's decision about one inbound message; every value except QUEUED is recorded with a reason."""

    QUEUED = "queued"
    DUPLICATE = "duplicate"
    RATE_LIMITED = "rate_limited"
    BLOCKED = "blocked"
    REJECTED = "rejected"  # invalid: too long, too many attachments, empty, bad envelope
    UNAVAILABLE = "unavailable"  # Redis could not be reached: nothing was stored, the sender must retry
    BUSY = "busy"  # Redis is full (its memory cap): nothing was queued; the sender should try again later


# What a user is told when Redis is full and their message could not be taken (decision BUSY).
BUSY_NOTICE = "I'm overloaded right now and could not take your message. Please send it again in a minute."


@dataclass(slots=True)
class AdmitResult:
    decision: Admission
    reason: str = ""
    notice: str | None = None  # text the adapter may show the user right away (a rate-limit notice)


class Admit(Protocol):
    """The gateway's admission as adapters call it.

    ``spool=True`` is for transports that cannot redeliver (gateway sockets, long polling): an outage
    then puts the message in the gateway's durable spool instead of answering ``UNAVAILABLE``.
    """

    async def __call__(self, envelope: Envelope, *, spool: bool = False) -> AdmitResult: ...


@dataclass(frozen=True, slots=True)
class Rating:
    """A user's 👍 (+1) or 👎 (-1) on one of the bot's messages; ``reply_id`` is the id its Sender returned."""

    platform: str
    reply_id: str
    user_id: str
    value: int
    workspace: str = ""  # Slack's team id: a Slack user id is only unique within its workspace


Rate = Callable[[Rating], Awaitable[None]]

_THUMBS_UP = {"👍", "+1", "thumbsup"}
_THUMBS_DOWN = {"👎", "-1", "thumbsdown"}
# Fitzpatrick skin-tone modifiers and the emoji variation selector: 👍🏽 is still a thumbs up.
_EMOJI_DECORATIONS = "".join(chr(c) for c in range(0x1F3FB, 0x1F400)) + "\ufe0f"


def rating_value(emoji: str) -> int | None:
    """+1 / -1 for a thumbs up / down (a Unicode emoji or a Slack name such as ``+1::skin-tone-2``), else None."""
    name = emoji.strip().strip(":").split("::", 1)[0]  # Slack: "+1::skin-tone-2"; ":thumbsup:" as typed
    name = name.strip(_EMOJI_DECORATIONS)
    if name in _THUMBS_UP:
        return 1
    if name in _THUMBS_DOWN:
        return -1
    return None


class AdapterState(StrEnum):
    DISABLED = "disabled"  # no token configured
    STARTING = "starting"
    CONNECTED = "connected"
    RETRYING = "retrying"  # lost or refused; backing off before the next attempt
    FAILED = "failed"  # gave up: bad token


@dataclass(slots=True)
class Health:
    state: AdapterState
    detail: str = ""
    since: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class PlatformAdapter(Protocol):
    """The inbound half: a long-running connection (gateway websocket, long polling, socket mode) or webhooks."""

    platform: str

    async def start(self, admit: Admit, rate: Rate | None = None) -> None:
        """Connect and keep connected (with backoff) until ``stop``; never raises for a platform outage.

        ``rate`` receives the 👍/👎 reactions users put on the bot's replies, on platforms that have them.
        """

    async def stop(self) -> None: ...

    def health(self) -> Health: ...


class SendError(Exception):
    """A reply that could not be delivered; ``retry_after`` is set when the platform asked us to wait."""

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


class Sender(Protocol):
    """The outbound half, used by workers: REST calls only."""

    platform: str

    async def send(self, reply: Reply) -> list[str]: ...

    async def aclose(self) -> None: ...
