"""Streaming on Telegram: "typing…", an animated draft in private chats, then one ``sendMessage``.

- Private chats: ``sendMessageDraft`` shows the answer as it is written, as an ephemeral draft
  that is never a message; the complete answer is then sent once through the sender's ordinary
  path (split at 4,096 UTF-16 units, formatted as every reply is). The draft id is derived from
  the message key, so a redelivered message after a worker's death continues the same draft, and
  there is nothing to record: the final ``sendMessage`` is the only message either way.
- Groups: drafts do not exist there, and edits would count against the group limit of about 20
  messages a minute, so a group sees "typing…" (refreshed every 4 s, it lasts 5 s) and then the
  complete message.

Every draft update goes through the central send limits (the chat's bucket, like a message).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from telegram import Bot
from telegram.constants import ChatAction

from adapters.egress_limits import EgressLimits
from adapters.live import first_part
from gateway.shared.envelope import Reply

if TYPE_CHECKING:
    from adapters.telegram.sender import TelegramSender

__all__ = ["TYPING_EVERY_S", "TelegramLive", "draft_id_for"]

TYPING_EVERY_S = 4.0  # Telegram shows a chat action for 5 s


def draft_id_for(message_key: str) -> int:
    """A non-zero 31-bit id, the same for every attempt at answering one message."""
    return int.from_bytes(hashlib.sha256(message_key.encode()).digest()[:4], "big") % (2**31 - 1) + 1


class TelegramLive:
    platform = "telegram"
    typing_every_s: float | None = TYPING_EVERY_S

    def __init__(self, sender: TelegramSender, bot: Bot, stub: Reply, interval_s: float) -> None:
        self._sender = sender
        self._bot = bot
        self._chat = int(stub.conversation_id)
        self.chat_id = str(self._chat)
        self.is_group = bool(stub.hints.get("is_group", self._chat < 0))
        thread = stub.hints.get("message_thread_id")
        if thread is None and stub.thread_id is not None:
            thread = int(stub.thread_id)
        self._thread = thread
        self.limits: EgressLimits | None = sender.limits
        # Drafts exist in private chats only; a group sees "typing…", then the whole answer.
        self.interval_s: float | None = None if self.is_group else interval_s
        self.draft_id = draft_id_for(stub.in_reply_to_key)

    def handle(self) -> str:
        return ""  # a draft is ephemeral and keyed by the message: nothing to resume

    async def typing(self) -> None:
        await self._sender.call(
            self._bot.send_chat_action, self._chat, ChatAction.TYPING, message_thread_id=self._thread
        )

    async def show(self, text: str) -> None:
        first = first_part(text, "telegram")
        if not first:
            return
        # A longer answer shows its first part while written; the final sendMessage splits it all.
        await self._sender.call(
            self._bot.send_message_draft, self._chat, self.draft_id, first, message_thread_id=self._thread
        )

    async def finish(self, reply: Reply) -> list[str]:
        return await self._sender.send(reply)
