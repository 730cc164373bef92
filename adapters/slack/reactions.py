"""A Slack ``reaction_added`` event -> a ``Rating`` of the bot's reply, or the reason it is not one."""

from __future__ import annotations

from typing import Any

from adapters.base import Rating, rating_value

__all__ = ["to_rating"]


def to_rating(event: dict[str, Any], bot_user_id: str | None, workspace: str = "") -> Rating | str:
    """The rating this reaction gives, or why it gives none (a short reason, used as a counter name)."""
    item = event.get("item") or {}
    if item.get("type") != "message" or not item.get("ts"):
        return "not_a_message"  # files and file comments can be reacted to as well
    user = event.get("user")
    if not user:
        return "no_user"
    if bot_user_id is not None and user == bot_user_id:
        return "own_reaction"
    # ``item_user`` is the reacted message's author; Slack leaves it out for some items (e.g. posted by
    # an integration). Then we accept: the analytics join drops a reply id it never recorded.
    item_user = event.get("item_user")
    if item_user is not None and item_user != bot_user_id:
        return "not_our_message"
    value = rating_value(str(event.get("reaction") or ""))
    if value is None:
        return "other_emoji"
    return Rating("slack", str(item["ts"]), str(user), value, workspace)
