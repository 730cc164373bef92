"""Egress on its own thread and event loop: a sent reply is recorded as sent within milliseconds.

Between the moment a platform accepts a reply and the moment the ledger records it ``done`` lies the
one window in which a worker's death means a second reply (the next worker cannot ask Telegram whether
it already has the message). On the worker's main loop that window is as wide as the loop is busy:
with a hundred messages in flight, the coroutine that holds the platform's answer waits its turn
behind everyone else's CPU work. The chaos suite measured it at 100 ms and more after a burst, and a
SIGKILL landing there duplicated two replies in one of three runs.

So sending and the ``finish`` that follows it run here, on a thread whose loop does nothing else. When
the platform's answer arrives this thread needs only the GIL (released by the main thread within the
interpreter's switch interval, 5 ms) to parse it and send ``finish``; the window shrinks to a few
milliseconds however loaded the main loop is. Everything this loop touches is its own: the senders'
HTTP clients and a Redis client (asyncio clients belong to one loop). A streamed reply lives here too
(``RemoteLive``): typing, drafts and edits run on this loop, the handler only feeds it text, and its
final form and ``finish`` follow each other here like any other reply's.

The thread is a daemon: a worker that exits without ``stop`` (SIGKILL) leaves nothing to join.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from adapters.live import LiveStream, StreamingSettings
from gateway.shared.envelope import Envelope, Reply
from gateway.shared.infra import retry_infrastructure
from gateway.shared.ledger import Ledger
from gateway.shared.queue import QUEUE
from gateway.shared.redis_urls import redis_client
from gateway.shared.settings import Settings
from workers.egress import Egress
from workers.streaming import open_live

__all__ = ["EgressLoop", "FinishAfterSend", "RemoteLive"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Called on the egress loop once the platform accepted the reply: records it, with that loop's ledger.
FinishAfterSend = Callable[[Ledger], Awaitable[None]]


class EgressLoop:
    """Runs ``Egress`` and the ledger's ``finish`` on a dedicated thread; awaited from any other loop."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="patchbay-egress", daemon=True)
        self._egress: Egress | None = None
        self._ledger: Ledger | None = None
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._open())
        self._ready.set()
        self._loop.run_forever()

    async def _open(self) -> None:
        url = self._settings.effective_redis_url
        redis = redis_client(url, max_connections=256, socket_timeout=10.0)  # as the pipeline's: never hangs
        self._ledger = Ledger(
            redis, lease_s=self._settings.claim_lease_s, max_attempts=self._settings.max_attempts, queue=QUEUE
        )
        self._egress = Egress(redis, url)

    def _submit(self, coroutine: Coroutine[Any, Any, T]) -> Awaitable[T]:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return asyncio.wrap_future(future)

    async def deliver(
        self, reply: Reply, finish: FinishAfterSend | None = None, *, live: RemoteLive | None = None
    ) -> list[str]:
        """Send ``reply`` (into the streamed message ``live`` when there is one); once the platform has it,
        ``finish`` runs at once on this loop, retried while Redis is away.

        ``DeliveryFailed`` comes back to the caller as ``Egress.deliver`` raises it; ``finish`` then never ran.
        """
        return await self._submit(self._deliver(reply, finish, live))

    async def open_live(
        self, message_key: str, token: str, envelope: Envelope, settings: StreamingSettings
    ) -> RemoteLive | None:
        """The live view of this message's reply, running on this loop; None where it does not stream."""
        assert self._egress is not None and self._ledger is not None
        live = await self._submit(open_live(self._egress, self._ledger, message_key, token, envelope, settings))
        return RemoteLive(self, live) if live is not None else None

    async def _deliver(self, reply: Reply, finish: FinishAfterSend | None, live: RemoteLive | None) -> list[str]:
        assert self._egress is not None and self._ledger is not None
        if live is not None:
            ids = await self._egress.deliver_live(live.stream, reply)
        else:
            ids = await self._egress.deliver(reply)
        if finish is not None:
            ledger = self._ledger
            # After egress the reply is out: keep trying for as long as Redis is away, or it would be sent again.
            await retry_infrastructure(lambda: finish(ledger), "finish", give_up_after_s=600.0)
        return ids

    async def stop(self) -> None:
        """Close the senders and the Redis client on their own loop, then end the thread."""
        if not self._thread.is_alive():
            return
        await self._submit(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join, 10)
        if not self._loop.is_running():
            self._loop.close()

    async def _close(self) -> None:
        if self._egress is not None:
            await self._egress.aclose()
        if self._ledger is not None:
            await self._ledger.redis.aclose()


class RemoteLive:
    """A reply streaming on the egress loop, fed from the worker's loop (``workers.streaming.LiveView``)."""

    def __init__(self, runner: EgressLoop, stream: LiveStream) -> None:
        self._runner = runner
        self.stream = stream  # touched only on the egress loop

    def feed(self, text: str) -> None:
        if text:
            self._runner._loop.call_soon_threadsafe(self.stream.feed, text)

    async def abort(self) -> None:
        """Stop typing and updates without sending anything more."""
        await self._runner._submit(self.stream.abort())
