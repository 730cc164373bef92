"""A Discord reaction -> a ``Rating`` of the bot's reply, or the reason it is not one."""

from __future__ import annotations

import discord

from adapters.base import Rating, rating_value

__all__ = ["to_rating"]


def to_rating(payload: discord.RawReactionActionEvent, bot_user_id: int) -> Rating | str:
    """The rating this reaction gives, or why it gives none (a short reason, used as a counter name)."""
    if payload.user_id == bot_user_id:
        return "own_reaction"
    # Discord names the reacted message's author in MESSAGE_REACTION_ADD; when it is missing we accept
    # rather than fetch the message: the analytics join drops a reaction whose reply id it never recorded.
    if payload.message_author_id is not None and payload.message_author_id != bot_user_id:
        return "not_our_message"
    if payload.emoji.id is not None:
        return "custom_emoji"  # a guild's own emoji, even one named "thumbsup", is not the Unicode 👍
    value = rating_value(payload.emoji.name or "")
    if value is None:
        return "other_emoji"
    return Rating("discord", str(payload.message_id), str(payload.user_id), value)
