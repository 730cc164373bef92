"""Streaming a reply while it is written: the worker's side of ``adapters.live``.

``open_live`` builds the platform's live view of the reply a message will get (typing at once,
partial text as the model writes) when streaming is on for that platform (``[streaming]``,
``PATCHBAY_STREAMING``), resuming the platform message an earlier attempt recorded in the ledger.
The handler finds it through ``current_live`` (a ``ContextVar``, like the message report), so no
component signature changes: a handler without a live stream calls ``LLM.complete`` as before.
Streaming never costs an answer: when the live view cannot be built the reply goes out whole.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Protocol

from adapters.live import LiveStream, StreamingSettings
from gateway.shared.envelope import Envelope, Reply
from gateway.shared.ledger import Ledger
from workers.egress import Egress

__all__ = ["LiveStream", "LiveView", "StreamingSettings", "current_live", "live_for", "open_live"]

log = logging.getLogger(__name__)


class LiveView(Protocol):
    """What the handler needs of a streaming reply: somewhere to put the text as it is written.

    A ``LiveStream`` itself, or the worker's proxy of one running on the egress loop
    (``workers.egress_loop.RemoteLive``).
    """

    def feed(self, text: str) -> None: ...


_live: ContextVar[LiveView | None] = ContextVar("patchbay_live_stream", default=None)


def current_live() -> LiveView | None:
    """The live view of the reply being prepared in this task, if it streams."""
    return _live.get()


@contextlib.contextmanager
def live_for(live: LiveView | None) -> Iterator[None]:
    token = _live.set(live)
    try:
        yield
    finally:
        _live.reset(token)


async def open_live(
    egress: Egress, ledger: Ledger, message_key: str, token: str, envelope: Envelope, settings: StreamingSettings
) -> LiveStream | None:
    if not settings.enabled(str(envelope.platform)):
        return None
    try:
        resume = await ledger.stream_handle(message_key)
        stub = Reply.answering(envelope, "", hints={"author_id": envelope.author_id})  # Slack streams name their reader
        target = egress.live_target(stub, resume, settings)
        if target is None:
            return None

        async def record(handle: str) -> bool:
            return await ledger.record_stream(message_key, token, handle)

        return await LiveStream(target, record=record).start()
    except Exception as exc:  # no live view: the answer still goes out, whole, at the end
        log.warning("streaming unavailable key=%s platform=%s: %r", message_key, envelope.platform, exc)
        return None
