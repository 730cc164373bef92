"""What the Telegram simulator checks in a message's ``entities``, as the Bot API refuses them.

Telegram counts entity offsets and lengths in UTF-16 code units. A message is refused with
``400 Bad Request: can't parse entities: ...`` when an entity is not an object of a known type with
integer ``offset >= 0`` and ``length > 0``, ends past the text, starts or ends inside a surrogate
pair (half an emoji), lacks the field its type needs (``url`` of ``text_link``, ``custom_emoji_id``
of ``custom_emoji``), or when two entities overlap without one containing the other, or
anything is nested inside ``code``/``pre``, or a blockquote is nested in a blockquote.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ENTITY_TYPES", "entity_error", "utf16_units"]

ENTITY_TYPES = frozenset(
    {
        "mention",
        "hashtag",
        "cashtag",
        "bot_command",
        "url",
        "email",
        "phone_number",
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "blockquote",
        "expandable_blockquote",
        "code",
        "pre",
        "text_link",
        "text_mention",
        "custom_emoji",
        "date_time",
    }
)
_REQUIRED = {"text_link": "url", "custom_emoji": "custom_emoji_id", "text_mention": "user"}
_NO_NESTING = {"code", "pre"}
_QUOTES = {"blockquote", "expandable_blockquote"}


def utf16_units(text: str) -> list[int]:
    """One entry per UTF-16 code unit: 1 where a character starts, 0 on the second half of a surrogate pair."""
    units: list[int] = []
    for char in text:
        units.append(1)
        if ord(char) > 0xFFFF:
            units.append(0)
    return units


def entity_error(text: str, entities: Any) -> str | None:
    """``None`` when ``entities`` are valid for ``text``, else Telegram's description of the refusal."""
    if entities is None:
        return None
    if not isinstance(entities, list):
        return "can't parse entities: entities must be an array"
    units = utf16_units(text)
    spans: list[tuple[int, int, str]] = []
    for index, entity in enumerate(entities):
        if not isinstance(entity, dict):
            return f"can't parse entities: entity {index} is not an object"
        kind, offset, length = entity.get("type"), entity.get("offset"), entity.get("length")
        if kind not in ENTITY_TYPES:
            return f"can't parse entities: unsupported entity type {kind!r}"
        if not isinstance(offset, int) or not isinstance(length, int) or offset < 0 or length <= 0:
            return f"can't parse entities: entity {index} has a wrong offset or length"
        end = offset + length
        if end > len(units):
            return (
                f"can't parse entities: entity beginning at UTF-16 offset {offset} ends after the end of the text "
                f"at UTF-16 offset {len(units)}"
            )
        if units[offset] == 0 or (end < len(units) and units[end] == 0):
            return f"can't parse entities: entity {index} cuts a character in half at a UTF-16 surrogate pair"
        needed = _REQUIRED.get(kind)
        if needed and not entity.get(needed):
            return f"can't parse entities: {kind} entity {index} has no {needed}"
        spans.append((offset, end, kind))
    return _nesting_error(spans)


def _nesting_error(spans: list[tuple[int, int, str]]) -> str | None:
    ordered = sorted(spans, key=lambda span: (span[0], -span[1]))
    open_spans: list[tuple[int, int, str]] = []
    for start, end, kind in ordered:
        while open_spans and open_spans[-1][1] <= start:
            open_spans.pop()
        if open_spans:
            outer_start, outer_end, outer_kind = open_spans[-1]
            if end > outer_end:
                return (
                    f"can't parse entities: {kind} entity at UTF-16 offset {start} overlaps {outer_kind} entity "
                    f"at {outer_start} without being inside it"
                )
            if outer_kind in _NO_NESTING:
                return (
                    f"can't parse entities: {outer_kind} entity at UTF-16 offset {outer_start} can't contain entities"
                )
            if kind in _QUOTES and any(span[2] in _QUOTES for span in open_spans):
                return f"can't parse entities: blockquote at UTF-16 offset {start} is nested in a blockquote"
        open_spans.append((start, end, kind))
    return None
