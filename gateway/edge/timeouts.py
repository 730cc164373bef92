"""Slow clients are timed out: headers within ``header_timeout_s``, then the whole body within ``body_timeout_s``.

uvicorn closes an *idle* keep-alive connection, but a client that connects and then sends its
headers or its body a byte at a time (slowloris) holds a connection and its buffers forever. This
protocol is uvicorn's own httptools protocol with two timers: one armed when a connection opens or a
new request begins, cancelled when its headers are complete (a late client gets ``408`` and the
connection is closed); one armed then, cancelled when the body is complete (the connection is closed
and the route sees a disconnect).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

__all__ = ["timed_protocol"]

log = logging.getLogger(__name__)

_TIMEOUT_TEXT = b"the request arrived too slowly"
_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: " + str(len(_TIMEOUT_TEXT)).encode() + b"\r\nconnection: close\r\n\r\n" + _TIMEOUT_TEXT
)


def timed_protocol(header_timeout_s: float, body_timeout_s: float) -> Any:
    """uvicorn's ``http=`` protocol class with both timeouts; ``"auto"`` (no timeouts) without httptools."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
        log.warning("httptools is not installed: slow HTTP clients are not timed out")
        return "auto"

    class TimedHttpToolsProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None
        _body_timer: asyncio.TimerHandle | None = None

        def _cancel(self, name: str) -> None:
            timer = getattr(self, name)
            if timer is not None:
                timer.cancel()
                setattr(self, name, None)

        def _arm_header_timer(self) -> None:
            self._cancel("_header_timer")
            self._header_timer = self.loop.call_later(header_timeout_s, self._headers_too_slow)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel("_header_timer")
            self._cancel("_body_timer")
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm_header_timer()

        def on_headers_complete(self) -> None:
            self._cancel("_header_timer")
            self._cancel("_body_timer")
            self._body_timer = self.loop.call_later(body_timeout_s, self._body_too_slow)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._cancel("_body_timer")
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # Between requests the keep-alive timeout applies; the next request's first byte re-arms ours.
            self._cancel("_header_timer")

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if self.transport.is_closing():
                return
            if self.cycle is not None and not self.cycle.response_complete:
                return  # a request is being answered; its successor is pipelined behind it
            log.info(
                "closing a connection from %s: no complete request headers within %.0fs", self.client, header_timeout_s
            )
            self.transport.write(_REQUEST_TIMEOUT)
            self.transport.close()

        def _body_too_slow(self) -> None:
            self._body_timer = None
            if self.transport.is_closing():
                return
            log.info(
                "closing a connection from %s: request body not complete within %.0fs", self.client, body_timeout_s
            )
            if self.cycle is not None and not self.cycle.response_started:
                self.transport.write(_REQUEST_TIMEOUT)
            self.transport.close()

    return TimedHttpToolsProtocol
