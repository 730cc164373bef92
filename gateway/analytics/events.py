"""Turn an emitted event (a JSON object) into a database row with every id pseudonymised."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from gateway.analytics.schema import EXPORT_COLUMNS, JSON_COLUMNS

__all__ = ["KINDS", "EventError", "event_row"]

KINDS = ("message", "reply", "reaction")
_TIME_FIELD = {"message": "ts_ingress", "reply": "ts_egress", "reaction": "ts"}
_KNOWN = set(EXPORT_COLUMNS) | {"ts_emit"}

Pseudonymise = Callable[[str | None], str | None]


class EventError(ValueError):
    """An event that cannot be stored; it goes to the dead-letter list, never silently away."""


def _platform_id(platform: str | None, ident: Any) -> str:
    return f"{platform}:{ident}"


def event_row(event: Mapping[str, Any], pseudonymise: Pseudonymise) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The row for ``analytics_events`` and the reply-id index rows a reply event adds."""
    kind = event.get("kind")
    if kind not in KINDS:
        raise EventError(f"unknown event kind {kind!r}")
    if not event.get("event_id"):
        raise EventError("event without event_id")
    row: dict[str, Any] = {name: event.get(name) for name in EXPORT_COLUMNS if name not in JSON_COLUMNS}
    row["ts"] = event.get(_TIME_FIELD[kind]) or event.get("ts") or event.get("ts_emit")
    if row["ts"] is None:
        raise EventError(f"{kind} event without a timestamp")
    platform = event.get("platform")
    for name in ("key", "conversation_id", "user_id"):
        row[name] = pseudonymise(None if event.get(name) is None else str(event[name]))
    if event.get("reply_id") is not None:
        row["reply_id"] = pseudonymise(_platform_id(platform, event["reply_id"]))
    hashed_replies = [pseudonymise(_platform_id(platform, rid)) for rid in event.get("reply_ids") or []]
    row["reply_ids"] = json.dumps(hashed_replies) if kind == "reply" else None
    row["patches"] = json.dumps(event["patches"]) if event.get("patches") is not None else None
    row["variants"] = json.dumps(event["variants"]) if event.get("variants") is not None else None
    extra = {name: value for name, value in event.items() if name not in _KNOWN}
    row["extra"] = json.dumps(extra) if extra else None  # unknown fields are kept, not dropped
    index = [{"reply_id": rid, "key": row["key"]} for rid in hashed_replies if rid and row["key"]]
    return row, index
