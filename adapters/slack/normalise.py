"""Slack event -> ``Envelope``, and which events the bot answers."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from gateway.shared.envelope import Attachment, Envelope, Platform

__all__ = ["answerable", "event_problem", "to_envelope"]

_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
_ALLOWED_SUBTYPES = {None, "file_share", "thread_broadcast"}  # edits, joins, bot posts... are not questions


_STRINGS = ("type", "subtype", "user", "text", "channel", "channel_type", "thread_ts", "team", "reaction")


def event_problem(event: dict[str, Any]) -> str | None:
    """Why a (signed) event cannot be taken as it is — a field of the wrong type — or None.

    A signature proves who sent an event, not that its fields make sense; str() of a dict must never
    become a user's "text".
    """
    for name in _STRINGS:
        if name in event and event[name] is not None and not isinstance(event[name], str):
            return f"event.{name} must be a string, not {type(event[name]).__name__}"
    if event.get("type") in ("message", "app_mention"):
        ts = event.get("ts")
        if not isinstance(ts, str):
            return "event.ts must be a string"
        try:
            float(ts)
        except ValueError:
            return "event.ts is not a Slack timestamp"
        if not isinstance(event.get("channel"), str) or not event["channel"]:
            return "event.channel is missing"
        files = event.get("files")
        if files is not None and (not isinstance(files, list) or not all(isinstance(f, dict) for f in files)):
            return "event.files must be a list of objects"
    if event.get("type") == "reaction_added" and not isinstance(event.get("item"), dict):
        return "event.item must be an object"
    return None


def answerable(event: dict[str, Any], bot_user_id: str | None) -> bool:
    """``app_mention`` events and direct messages from humans; never our own (or any bot's) posts."""
    if event.get("bot_id") or event.get("subtype") not in _ALLOWED_SUBTYPES:
        return False
    if bot_user_id is not None and event.get("user") == bot_user_id:
        return False
    if event.get("type") == "app_mention":
        return True
    return event.get("type") == "message" and event.get("channel_type") == "im"


def to_envelope(body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None) -> Envelope:
    text = str(event.get("text") or "")
    mentions = _MENTION.findall(text)
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", "", text).strip()
    ts = str(event["ts"])
    thread_ts = event.get("thread_ts")
    voice: Attachment | None = None
    attachments: list[Attachment] = []
    for item in event.get("files") or []:
        url = item.get("url_private_download") or item.get("url_private")
        if not url:
            continue
        mime = str(item.get("mimetype") or "application/octet-stream")
        is_voice = item.get("subtype") == "slack_audio" or mime.startswith("audio/")
        attachment = Attachment(
            url=url, mime_type=mime, size=item.get("size"), filename=item.get("name"), is_voice=is_voice
        )
        if is_voice and voice is None:
            voice = attachment
        else:
            attachments.append(attachment)
    return Envelope(
        platform=Platform.SLACK,
        bot_id=str(body.get("team_id") or event.get("team") or "unknown"),
        conversation_id=str(event["channel"]),
        thread_id=thread_ts,
        # The message ts is the same on every redelivery of the event, which is what dedupe needs.
        message_id=ts,
        author_id=str(event.get("user") or "unknown"),
        is_direct=event.get("channel_type") == "im",
        text=text,
        mentions=mentions,
        attachments=attachments,
        voice=voice,
        reply_to=ts,
        timestamp=datetime.fromtimestamp(float(ts), UTC),
        hints={"thread_ts": thread_ts or ts, "channel_type": event.get("channel_type", "channel")},
        raw=body,
    )
