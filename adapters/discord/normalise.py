"""discord.py ``Message`` -> ``Envelope``, and whether the bot should answer it."""

from __future__ import annotations

import re
from typing import Any

import discord

from gateway.shared.envelope import Attachment, Envelope, Platform

__all__ = ["addressed_to_bot", "to_envelope"]


def _channel_ids(message: discord.Message) -> tuple[str, str | None]:
    """(conversation id, thread id): a thread's conversation is its parent channel."""
    channel = message.channel
    if isinstance(channel, discord.Thread):
        return str(channel.parent_id), str(channel.id)
    return str(channel.id), None


def addressed_to_bot(message: discord.Message, me: discord.ClientUser, channels: set[str]) -> bool:
    """DMs, mentions of the bot, and every message in a configured channel; never a bot's own posts."""
    if message.author.id == me.id or message.author.bot:
        return False
    if message.guild is None:
        return True
    if me in message.mentions:
        return True
    conversation, thread = _channel_ids(message)
    return conversation in channels or (thread is not None and thread in channels)


def to_envelope(message: discord.Message, me: discord.ClientUser, raw: dict[str, Any] | None = None) -> Envelope:
    conversation, thread = _channel_ids(message)
    text = re.sub(rf"<@!?{me.id}>", "", message.content).strip()
    voice: Attachment | None = None
    attachments: list[Attachment] = []
    for item in message.attachments:
        mime = item.content_type or "application/octet-stream"
        is_voice = item.is_voice_message() or mime.startswith("audio/")
        attachment = Attachment(
            url=item.url,
            mime_type=mime,
            size=item.size,
            filename=item.filename,
            duration_s=item.duration,
            is_voice=is_voice,
        )
        if is_voice and voice is None:
            voice = attachment
        else:
            attachments.append(attachment)
    hints: dict[str, Any] = {"channel_id": str(message.channel.id)}
    if message.guild is not None:
        hints["guild_id"] = str(message.guild.id)
    reference = message.reference
    return Envelope(
        platform=Platform.DISCORD,
        bot_id=str(me.id),
        conversation_id=conversation,
        thread_id=thread,
        message_id=str(message.id),
        author_id=str(message.author.id),
        author_name=message.author.name,
        is_direct=message.guild is None,
        text=text,
        mentions=[str(user.id) for user in message.mentions],
        attachments=attachments,
        voice=voice,
        reply_to=str(reference.message_id) if reference and reference.message_id else None,
        timestamp=message.created_at,
        hints=hints,
        raw=raw or {"id": str(message.id), "channel_id": str(message.channel.id), "content": message.content},
    )
