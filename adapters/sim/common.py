"""What every platform simulator shares: an aiohttp server on 127.0.0.1, a record of what the bot
sent, injected failures, and the ``/_sim`` control routes.

Control API (JSON), the same on every simulator:

- ``GET  /_sim/sent``          everything the bot sent, oldest first (edits and streams update their entry);
- ``GET  /_sim/activity``      every typing, draft, edit and stream call, oldest first, with its time;
- ``POST /_sim/fail``          ``{"count": 1, "status": 429, "retry_after": 1.0}``: the next ``count``
  bot requests (of ``method`` only, when given) fail with that status in the platform's shape;
- ``POST /_sim/user_message``  a *user* message into the platform (fields per simulator).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

__all__ = ["Failure", "SentRecord", "SimServer"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SentRecord:
    """One thing the bot did on the platform: a message, a voice note, an uploaded file."""

    method: str  # the platform's name for it: sendMessage, chat.postMessage, POST /channels/{id}/messages
    chat_id: str
    text: str = ""
    thread_id: str | None = None
    reply_to: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)  # file_id, name, content_type, size, ogg_valid
    message_id: str = ""
    at: float = field(default_factory=time.time)
    raw: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Failure:
    status: int
    retry_after: float | None = None
    method: str | None = None  # None: any bot request


class SimServer:
    """Base of the simulators: start/stop, the record, failure injection, the control routes."""

    name = "sim"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.sent: list[SentRecord] = []
        self.activity: list[SentRecord] = []  # typing, drafts, edits, stream appends: what streaming did
        self.requests: list[tuple[str, str]] = []  # (method, path) of every bot request, for debugging
        self._failures: list[Failure] = []
        self.failures_served: list[tuple[float, str, Failure]] = []  # (time, method, failure) as answered
        self._ids = itertools.count(1000)
        self._runner: web.AppRunner | None = None
        self._sent_changed = asyncio.Condition()
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_get("/_sim/sent", self._get_sent)
        self.app.router.add_get("/_sim/activity", self._get_activity)
        self.app.router.add_post("/_sim/fail", self._post_fail)
        self.app.router.add_post("/_sim/user_message", self._post_user_message)

    # ------------------------------------------------------------------ lifecycle

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> Self:
        """Serve; after ``stop`` this starts again on the same port with the same state (an outage ending)."""
        await self.before_start()
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = int(self._runner.addresses[0][1])
        log.info("%s simulator listening on %s", self.name, self.origin)
        return self

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await self.before_stop()
            await runner.cleanup()

    async def before_start(self) -> None:
        """Subclasses reset what ``before_stop`` shut down, so that a stopped simulator can start again."""

    async def before_stop(self) -> None:
        """Subclasses close their long-lived connections here."""

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ record and failures

    def next_id(self) -> int:
        return next(self._ids)

    async def record(self, item: SentRecord) -> SentRecord:
        self.sent.append(item)
        async with self._sent_changed:
            self._sent_changed.notify_all()
        return item

    def record_activity(self, item: SentRecord) -> SentRecord:
        self.activity.append(item)
        return item

    def find_sent(self, chat_id: str, message_id: str) -> SentRecord | None:
        return next((m for m in self.sent if m.chat_id == chat_id and m.message_id == message_id), None)

    async def wait_sent(
        self, predicate: Callable[[list[SentRecord]], bool], within_s: float = 20.0
    ) -> list[SentRecord]:
        """Wait until ``predicate(self.sent)`` holds; raises ``TimeoutError`` after ``within_s`` otherwise."""

        async def until() -> None:
            async with self._sent_changed:
                await self._sent_changed.wait_for(lambda: predicate(self.sent))

        await asyncio.wait_for(until(), within_s)
        return self.sent

    def fail(
        self, count: int = 1, status: int = 429, retry_after: float | None = 1.0, method: str | None = None
    ) -> None:
        """Make the next ``count`` bot requests (to ``method``, or any) fail with ``status``."""
        self._failures.extend(Failure(status, retry_after, method) for _ in range(count))

    def is_send(self, method: str) -> bool:
        """Whether a request is the bot *sending*: failures without a method only hit those, not polling."""
        return True

    def take_failure(self, method: str) -> Failure | None:
        for index, failure in enumerate(self._failures):
            if failure.method == method or (failure.method is None and self.is_send(method)):
                self.failures_served.append((time.time(), method, failure))
                return self._failures.pop(index)
        return None

    def file_bytes(self, file_id: str) -> bytes:
        """The bytes of a file the bot uploaded, by the ``file_id`` of its entry in ``SentRecord.files``."""
        raise KeyError(file_id)

    @property
    def failures_pending(self) -> int:
        return len(self._failures)

    # ------------------------------------------------------------------ control routes

    async def _get_sent(self, request: web.Request) -> web.Response:
        return web.json_response([item.to_json() for item in self.sent])

    async def _get_activity(self, request: web.Request) -> web.Response:
        return web.json_response([item.to_json() for item in self.activity])

    async def _post_fail(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.fail(
            count=int(body.get("count", 1)),
            status=int(body.get("status", 429)),
            retry_after=body.get("retry_after", 1.0),
            method=body.get("method"),
        )
        return web.json_response({"ok": True, "pending": self.failures_pending})

    async def _post_user_message(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"ok": False, "error": "body must be JSON"}, status=400)
        try:
            result = await self.user_message_from_json(body)
        except (KeyError, ValueError) as exc:
            return web.json_response({"ok": False, "error": f"bad user message: {exc}"}, status=400)
        return web.json_response({"ok": True, "result": result})

    async def user_message_from_json(self, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


async def run_forever(server: SimServer, announce: Callable[[SimServer], Awaitable[None]]) -> None:
    """Serve until cancelled (Ctrl-C): used by the ``patchbay sim`` commands."""
    async with server:
        await announce(server)
        await asyncio.Event().wait()
