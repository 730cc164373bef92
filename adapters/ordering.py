"""Arrival order per chat, for platform clients that handle each event as its own task.

A chat's events run one after another, in arrival order; different chats still run side by side.
Order holds because the client starts one task per event in arrival order, each reaches
``hold`` without yielding first, and ``asyncio.Lock`` hands itself over first come, first served.
Admission then numbers the chat's messages in that order, and workers follow the numbers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager

__all__ = ["ChatOrder"]


class ChatOrder:
    def __init__(self) -> None:
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._holders: dict[Hashable, int] = {}  # events holding or awaiting each lock, to drop idle locks

    @asynccontextmanager
    async def hold(self, chat: Hashable) -> AsyncIterator[None]:
        lock = self._locks.setdefault(chat, asyncio.Lock())
        self._holders[chat] = self._holders.get(chat, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._holders[chat] -= 1
            if self._holders[chat] == 0:
                del self._holders[chat]
                del self._locks[chat]
