"""Telegram ``Message`` -> ``Envelope``, and whether the bot should answer it.

Files travel as Telegram's ``file_id``, never as a download URL: a Bot API file URL contains the bot
token, and an envelope is stored in Redis (and its AOF) and read by workers anywhere. The worker
resolves the id when it downloads (``workers.downloads``).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from telegram import Bot, Message, MessageEntity

from gateway.shared.envelope import Attachment, Envelope, Platform

__all__ = ["addressed_to_bot", "to_envelope"]

log = logging.getLogger(__name__)


def addressed_to_bot(message: Message, bot_id: int, username: str) -> bool:
    """Private chats always; in groups only a mention of the bot or a reply to one of its messages."""
    if message.from_user is None or message.from_user.is_bot:
        return False  # bots (ourselves included) are never answered
    if message.chat.type == "private":
        return True
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot_id:
        return True
    return username.lower() in _mentioned_usernames(message) or bot_id in _mentioned_ids(message)


def _mentioned_usernames(message: Message) -> set[str]:
    entities = message.parse_entities([MessageEntity.MENTION]) if message.text else {}
    captions = message.parse_caption_entities([MessageEntity.MENTION]) if message.caption else {}
    return {text.lstrip("@").lower() for text in [*entities.values(), *captions.values()]}


def _mentioned_ids(message: Message) -> set[int]:
    entities = [*(message.entities or ()), *(message.caption_entities or ())]
    return {e.user.id for e in entities if e.type == MessageEntity.TEXT_MENTION and e.user is not None}


async def to_envelope(message: Message, bot: Bot, counters: dict[str, int]) -> Envelope:
    """The envelope of ``message``; ``counters`` are the adapter's (nothing here can fail to count now)."""
    me = bot.bot
    text = message.text or message.caption or ""
    stripped = re.sub(rf"@{re.escape(me.username)}\b", "", text, flags=re.IGNORECASE).strip() if me.username else text
    author = message.from_user
    thread_id = message.message_thread_id if message.is_topic_message else None
    voice: Attachment | None = None
    attachments: list[Attachment] = []
    if message.voice is not None:
        voice = _attachment(message.voice.file_id, "audio/ogg", message.voice.file_size, True)
    elif message.audio is not None:
        mime = message.audio.mime_type or "audio/mpeg"
        voice = _attachment(message.audio.file_id, mime, message.audio.file_size, True)
    if message.document is not None:
        mime = message.document.mime_type or "application/octet-stream"
        attachments.append(_attachment(message.document.file_id, mime, message.document.file_size, False))
    if message.photo:
        largest = message.photo[-1]
        attachments.append(_attachment(largest.file_id, "image/jpeg", largest.file_size, False))
    hints: dict[str, Any] = {"chat_type": message.chat.type, "is_group": message.chat.type != "private"}
    if thread_id is not None:
        hints["message_thread_id"] = thread_id
    return Envelope(
        platform=Platform.TELEGRAM,
        bot_id=str(me.id),
        conversation_id=str(message.chat.id),
        thread_id=None if thread_id is None else str(thread_id),
        message_id=str(message.message_id),
        author_id=str(author.id) if author else "unknown",
        author_name=(author.username or author.full_name) if author else "",
        is_direct=message.chat.type == "private",
        text=stripped,
        mentions=sorted(_mentioned_usernames(message)),
        attachments=attachments,
        voice=voice,
        reply_to=str(message.reply_to_message.message_id) if message.reply_to_message else None,
        timestamp=message.date,
        hints=hints,
        raw=message.to_dict(),
    )


def _attachment(file_id: str, mime: str, size: int | None, is_voice: bool) -> Attachment:
    return Attachment(file_id=file_id, mime_type=mime, size=size, is_voice=is_voice)
