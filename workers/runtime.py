"""One asyncio event loop per worker process, shared by every Celery pool thread.

Celery has no asyncio pool, so the worker runs the threads pool and each task hands its coroutine
to this loop and waits. One loop per process keeps litellm's and redis' connection pools valid
(repeated ``asyncio.run`` with shared httpx pools gives "Event loop is closed": docs/decisions.md) and lets
a single process keep hundreds of conversations in flight while each LLM call awaits I/O.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread", "run_coroutine", "shared_loop"]

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str = "patchbay-loop") -> None:
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._ready.set()
        loop.run_forever()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coroutine`` on the loop from any other thread and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)


_shared: LoopThread | None = None
_shared_lock = threading.Lock()


def shared_loop() -> LoopThread:
    """The process's loop, created on first use (after any fork, so never inherited)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = LoopThread()
    return _shared


def run_coroutine(coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    return shared_loop().run(coroutine, timeout)
