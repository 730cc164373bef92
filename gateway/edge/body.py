"""Request bodies: a size limit answered 413 before the body is read, and a JSON nesting limit before parsing.

Without it one 300 MB POST took the gateway from 222 MB to 1 GB and blocked its event loop while the
JSON was parsed. Now a declared ``Content-Length`` over the limit is refused at once, without reading
a byte; a chunked body is counted as it arrives and refused the moment it passes the limit. A body
within the limit is buffered (every route reads it whole anyway) and, when it is JSON, its nesting
depth is measured without parsing it: deep nesting (``[[[[…]]]]``) would make ``json.loads`` recurse.

The default limit, 1 MiB, is about ten times the largest legitimate payload a platform sends us (a
Slack event with a 40,000-character message and its blocks is ~100-200 KB; a Telegram update is a
few KB, captions and entities included) and holds a web chat message of 100,000 ASCII characters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimits", "json_depth_exceeds"]

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """True when ``body`` (JSON, well-formed or not) opens more than ``limit`` nested arrays/objects.

    Strings are removed first (a ``[`` inside one is text), then every byte but brackets; the depth
    is the largest running count of opened minus closed brackets. Regex, ``bytes.translate`` and a
    numpy cumulative sum all run in C, so even a hostile 1 MiB body costs a few milliseconds. Malformed
    JSON that is not too deep passes: the route answers it as it should (Telegram's webhook must
    acknowledge it, the web chat says 422).
    """
    brackets = _STRINGS.sub(b"", body).translate(None, _NOT_BRACKETS)
    if brackets.count(b"[") + brackets.count(b"{") <= limit:
        return False
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int32)
    return int(np.cumsum(steps).max()) > limit


class _TooLarge(Exception):
    pass


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or kind.endswith(b"+json")
    return False


class BodyLimits:
    """ASGI middleware: ``max_bytes`` per request body (413), ``max_depth`` per JSON body (400).

    ``path_limits`` gives single routes a limit of their own (the web chat's image upload), checked
    the same way: declared too large is refused unread, a chunked body the moment it passes.
    """

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, max_depth: int, path_limits: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope.get("path", ""), self.max_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, 413, "body_too_large", f"the request body is limited to {limit:,} bytes")
            return
        try:
            body = await self._read(receive, limit)
        except _TooLarge:
            await _refuse(send, 413, "body_too_large", f"the request body is limited to {limit:,} bytes")
            return
        if body is None:  # the client went away
            return
        if body and _is_json(scope) and json_depth_exceeds(body, self.max_depth):
            await _refuse(
                send, 400, "invalid_json", f"the JSON body is malformed or nested deeper than {self.max_depth} levels"
            )
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive, limit: int) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect, as the server would

    return replay


async def _refuse(send: Send, status: int, error: str, detail: str) -> None:
    import json

    payload: dict[str, Any] = {"error": error, "detail": detail}
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
