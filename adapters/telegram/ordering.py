"""Per-chat order for concurrent update processing.

python-telegram-bot's ``concurrent_updates(True)`` runs every update as its own task, so two
messages of one chat can reach admission in either order: "/voice off" followed by "and now?"
was sometimes admitted second, and the gateway's per-conversation sequence (which workers follow)
then answered "and now?" with voice. Chats still run side by side; within one chat each update
waits for the previous one.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from adapters.ordering import ChatOrder

__all__ = ["PerChatOrder"]


class PerChatOrder(BaseUpdateProcessor):
    """Concurrent across chats, sequential (in arrival order) within a chat."""

    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._order = ChatOrder()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        async with self._order.hold(chat.id):
            await coroutine

    async def initialize(self) -> None:
        """Nothing to set up: locks are made on demand."""

    async def shutdown(self) -> None:
        """Nothing to release."""
