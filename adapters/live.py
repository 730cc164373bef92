"""A reply shown while it is written: "typing…", then growing text, then the one final message.

``LiveStream`` is the platform-independent half. A worker ``feed``s it the model's text as it
arrives; one flusher task shows the *newest* text on the platform (through a ``LiveTarget``) at
most once per ``interval_s``, and only when the central send limits in Redis admit it
(``EgressLimits.check``, the same buckets as replies): chunks are coalesced, never queued, so a
busy chat slows the updates down instead of drawing 429s. A 429 on an update pauses every worker
(``EgressLimits.pause``) for its ``Retry-After`` and the next update carries the newer text: nothing
is lost, because the end of the answer is never an update but ``finish``, the platform's ordinary
send path (split at the platform's limit, retried by the worker like any reply).

"Typing…" is refreshed every ``typing_every_s`` until the first text is visible (or, where a
conversation shows no partial text, until the answer is out), then stops.

Exactly one answer across a worker's death: before its first visible output, and whenever it
changes, the target's ``handle`` (the platform message id, stream id…) is given to ``record``,
which the worker writes to the message's ledger record; a redelivered message builds its target
from that handle and finishes the *same* platform message (docs/platforms.md, "Streaming").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from pydantic import AliasChoices, Field, field_validator

from adapters.base import SendError
from adapters.egress_limits import EgressLimits, RateLimitedError
from adapters.text import PLATFORM_LIMITS, split_message
from gateway.shared.config import PatchbaySettings
from gateway.shared.envelope import Reply

__all__ = ["STREAMING_PLATFORMS", "LiveStats", "LiveStream", "LiveTarget", "StreamingSettings", "first_part"]

log = logging.getLogger(__name__)

STREAMING_PLATFORMS = ("telegram", "discord", "slack", "webchat")
_OFF = {"off", "none", "false", "0", "no"}
_STOP_GRACE_S = 10.0


class StreamingSettings(PatchbaySettings):
    """``[streaming]`` in patchbay.toml, ``PATCHBAY_STREAMING*`` in the environment (README, docs/platforms.md)."""

    TOML_SECTION: ClassVar[str] = "streaming"

    platforms: list[str] = Field(
        default_factory=lambda: list(STREAMING_PLATFORMS),
        validation_alias=AliasChoices("PATCHBAY_STREAMING", "platforms"),
        description='platforms whose replies stream ("telegram,discord,slack,webchat"); "off" for none, "all" for every one',
    )
    edit_interval_s: float = Field(
        default=1.0,
        ge=0.2,
        validation_alias=AliasChoices("PATCHBAY_STREAMING_EDIT_INTERVAL", "edit_interval_s"),
        description="seconds between two visible updates of one answer on Telegram, Discord and Slack",
    )
    webchat_interval_s: float = Field(
        default=0.05,
        ge=0.0,
        validation_alias=AliasChoices("PATCHBAY_STREAMING_WEBCHAT_INTERVAL", "webchat_interval_s"),
        description="seconds between two pushes of one answer to the web chat page",
    )
    slack_status: bool = Field(
        default=True,
        validation_alias=AliasChoices("PATCHBAY_STREAMING_SLACK_STATUS", "slack_status"),
        description="show Slack's assistant status (assistant.threads.setStatus) while the answer is prepared",
    )

    @field_validator("platforms", mode="before")
    @classmethod
    def _names(cls, value: object) -> object:
        if isinstance(value, str):
            words = [part.strip().lower() for part in value.split(",") if part.strip()]
            if not words or words[0] in _OFF:
                return []
            if words[0] in ("all", "on", "true", "1", "yes"):
                return list(STREAMING_PLATFORMS)
            unknown = sorted(set(words) - set(STREAMING_PLATFORMS))
            if unknown:
                raise ValueError(f"unknown platforms {unknown}; streaming knows {', '.join(STREAMING_PLATFORMS)}")
            return words
        return value

    def enabled(self, platform: str) -> bool:
        return platform in self.platforms


def first_part(text: str, platform: str) -> str:
    """What of ``text`` fits the platform's first message, cut where the final split will cut it."""
    limit, measure = PLATFORM_LIMITS[platform]
    parts = split_message(text, limit, measure=measure)
    return parts[0] if parts else ""


class LiveTarget(Protocol):
    """One answer on one platform, as ``LiveStream`` drives it."""

    platform: str
    chat_id: str  # the send-limit bucket (channel, chat)
    is_group: bool
    interval_s: float | None  # None: this conversation shows no partial text, only "typing…"
    typing_every_s: float | None  # None: the platform has no typing indicator here
    limits: EgressLimits | None  # None: no send limits (the web chat)

    def handle(self) -> str:
        """What a redelivery needs to finish this same message (JSON; "" when there is nothing to resume)."""
        ...

    async def typing(self) -> None: ...

    async def show(self, text: str) -> None:
        """Make ``text`` (everything said so far) the visible partial answer."""
        ...

    async def finish(self, reply: Reply) -> list[str]:
        """Persist the complete answer (the same message where one is showing); the platform ids sent."""
        ...


@dataclass(slots=True)
class LiveStats:
    typing_calls: int = 0
    updates: int = 0
    rate_limited: int = 0  # updates the platform answered 429
    waits: int = 0  # times the central limits held an update back
    first_visible_at: float | None = None  # wall clock of the first visible text
    update_times: list[float] = field(default_factory=list)


Record = Callable[[str], Awaitable[object]]


class LiveStream:
    def __init__(self, target: LiveTarget, *, record: Record | None = None) -> None:
        self.target = target
        self.stats = LiveStats()
        self._record = record
        self._recorded = ""
        self._text = ""
        self.shown = ""
        self._dirty = asyncio.Event()
        self._closing = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.broken = False  # an update failed for good: the rest waits for ``finish``

    @property
    def text(self) -> str:
        return self._text

    async def start(self) -> LiveStream:
        await self._record_handle()
        self._tasks = [
            asyncio.create_task(self._typing_loop(), name=f"live-typing-{self.target.platform}"),
            asyncio.create_task(self._flush_loop(), name=f"live-flush-{self.target.platform}"),
        ]
        return self

    def feed(self, text: str) -> None:
        if text:
            self._text += text
            self._dirty.set()

    async def finish(self, reply: Reply) -> list[str]:
        """Stop updating (an update in flight completes first), then persist the complete answer."""
        await self._stop()
        return await self.target.finish(reply)

    async def abort(self) -> None:
        """Stop typing and updating without sending anything more (the message is retried or answered elsewhere)."""
        await self._stop()

    async def _stop(self) -> None:
        self._closing.set()
        self._dirty.set()
        if self._tasks:
            self._tasks[0].cancel()  # "typing…": a call in flight is not worth waiting for
        for task in self._tasks:
            try:
                # An update in flight completes first, so it cannot land after the final text; one
                # stuck on a dead connection is given up (logged) rather than holding the answer.
                await asyncio.wait_for(task, timeout=_STOP_GRACE_S)
            except asyncio.CancelledError:
                pass
            except TimeoutError:
                log.warning(
                    "a live update on %s hung for %.0fs; finishing without it", self.target.platform, _STOP_GRACE_S
                )
        self._tasks = []

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the stream closes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout=max(0.0, seconds))

    async def _record_handle(self) -> None:
        handle = self.target.handle()
        if self._record is not None and handle and handle != self._recorded:
            await self._record(handle)
            self._recorded = handle

    async def _typing_loop(self) -> None:
        every = self.target.typing_every_s
        if every is None:
            return
        shows_text = self.target.interval_s is not None
        while not self._closing.is_set() and not (shows_text and self.shown):
            try:
                await self.target.typing()
                self.stats.typing_calls += 1
            except Exception as exc:  # an indicator that failed is not worth an answer
                log.debug("typing indicator failed on %s: %r", self.target.platform, exc)
            await self._pause(every)

    async def _flush_loop(self) -> None:
        interval = self.target.interval_s
        if interval is None:
            return
        target, limits = self.target, self.target.limits
        next_at = 0.0
        while not self._closing.is_set():
            await self._dirty.wait()
            if self._closing.is_set():
                return
            delay = next_at - time.monotonic()
            if delay > 0:
                await self._pause(delay)
                continue
            if limits is not None:
                wait = await limits.check(target.platform, target.chat_id, target.is_group)
                if wait > 0:
                    self.stats.waits += 1
                    await self._pause(wait)
                    continue
            self._dirty.clear()
            text = self._text
            if text == self.shown:
                continue
            try:
                await self._record_handle()  # before the first visible output
                await target.show(text)
            except RateLimitedError as exc:
                self.stats.rate_limited += 1
                retry = exc.retry_after or 1.0
                if limits is not None:
                    chat = None if exc.whole_platform else target.chat_id
                    await limits.pause(target.platform, retry, chat_id=chat)
                else:
                    await self._pause(retry)
                self._dirty.set()  # the newer text goes out next
                continue
            except SendError as exc:
                log.warning("live update failed on %s: %s", target.platform, exc)
                if exc.permanent:
                    self.broken = True
                    return
                next_at = time.monotonic() + max(interval, 1.0)
                self._dirty.set()
                continue
            except Exception:
                log.exception("live update failed on %s; the answer is sent when complete", target.platform)
                self.broken = True
                return
            self.shown = text
            now = time.time()
            self.stats.updates += 1
            self.stats.update_times.append(now)
            if self.stats.first_visible_at is None:
                self.stats.first_visible_at = now
            await self._record_handle()  # the platform's id of what is now showing
            next_at = time.monotonic() + interval
