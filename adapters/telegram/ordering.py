"""Per-chat order for concurrent update processing.

python-telegram-bot's ``concurrent_updates(True)`` runs every update as its own task, so two
messages of one chat can reach admission in either order: "/voice off" followed by "and now?"
was sometimes admitted second, and the gateway's per-conversation sequence (which workers follow)
then answered "and now?" with voice. Chats still run side by side; within one chat each update
waits for the previous one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

__all__ = ["PerChatOrder"]


class PerChatOrder(BaseUpdateProcessor):
    """Concurrent across chats, sequential (in arrival order) within a chat.

    Order holds because the Application starts one task per update in arrival order and each
    reaches the chat's lock without yielding first; ``asyncio.Lock`` hands itself over FIFO.
    """

    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._holders: dict[int, int] = {}  # updates holding or awaiting each lock, to drop idle locks

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        lock = self._locks.setdefault(chat.id, asyncio.Lock())
        self._holders[chat.id] = self._holders.get(chat.id, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._holders[chat.id] -= 1
            if self._holders[chat.id] == 0:
                del self._holders[chat.id]
                del self._locks[chat.id]

    async def initialize(self) -> None:
        """Nothing to set up: locks are made on demand."""

    async def shutdown(self) -> None:
        """Nothing to release."""
