"""Markdown (what models write) -> Telegram text plus ``MessageEntity`` lists, part by part.

Decisions (docs/decisions.md, "Native formatting"):

- Entities, not ``parse_mode``: ``telegramify-markdown`` parses the Markdown (pulldown-cmark,
  through ``adapters.markdown``) and returns plain text with entities whose offsets are UTF-16 code
  units, so nothing is escaped for Telegram and no model output can break the request's syntax.
- Split first, then convert: the Markdown is split at Telegram's limit by ``adapters.text`` (which
  never leaves a fenced code block open) and every part is converted on its own, so each message
  carries complete entities of its own. Conversion can lengthen a part (a heading gains an emoji);
  a part that outgrows the limit is split again by the library's own ``split_entities``, which
  clips entities at the cut.
- The fallback: a part Telegram still refuses with a 400 about entities is sent again as its
  Markdown in plain text (what users saw before), logged and counted: the reply is never lost.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import telegramify_markdown
from prometheus_client import Counter
from telegram import Message, MessageEntity
from telegram.error import BadRequest

from adapters.markdown import to_entities
from adapters.text import PLATFORM_LIMITS, split_message

__all__ = ["FORMAT_FALLBACKS", "TelegramPart", "render_markdown", "send_formatted"]

log = logging.getLogger(__name__)

FORMAT_FALLBACKS = Counter(
    "patchbay_telegram_format_fallbacks_total", "Telegram messages refused for their entities and resent as plain text"
)

_LIMIT, _MEASURE = PLATFORM_LIMITS["telegram"]


@dataclass(frozen=True, slots=True)
class TelegramPart:
    """One message: its text, its entities (UTF-16 offsets into ``text``), and the Markdown it came from."""

    text: str
    entities: list[MessageEntity] = field(default_factory=list)
    plain: str = ""  # the fallback: the part's Markdown as the model wrote it


def render_markdown(markdown: str, limit: int = _LIMIT) -> list[TelegramPart]:
    """The messages of one answer, each within ``limit`` UTF-16 code units with well-formed entities."""
    parts: list[TelegramPart] = []
    for chunk in split_message(markdown, limit, measure=_MEASURE):
        text, entities = to_entities(chunk)
        if not text.strip():  # Markdown that renders to nothing (an empty link, a lone rule): send what was written
            parts.append(TelegramPart(chunk, [], chunk))
            continue
        pieces = telegramify_markdown.split_entities(text, entities, limit)
        for piece, piece_entities in pieces:
            # One piece falls back to its Markdown; pieces of a re-split part to their own text (never the whole chunk twice).
            fallback = chunk if len(pieces) == 1 else piece
            parts.append(TelegramPart(piece, [_entity(e) for e in piece_entities], fallback))
    return parts


def _entity(entity: telegramify_markdown.MessageEntity) -> MessageEntity:
    return MessageEntity(
        type=entity.type,
        offset=entity.offset,
        length=entity.length,
        url=entity.url,
        language=entity.language,
        custom_emoji_id=entity.custom_emoji_id,
    )


async def send_formatted(
    send: Callable[[str, list[MessageEntity] | None], Awaitable[Message]], part: TelegramPart
) -> Message:
    """Send one part with its entities; if Telegram refuses them, send its Markdown as plain text instead."""
    try:
        return await send(part.text, part.entities or None)
    except BadRequest as exc:
        if not part.entities or "entit" not in str(exc).lower():
            raise
        FORMAT_FALLBACKS.inc()
        log.warning("telegram refused the entities of a message (%s): sending it as plain text", exc)
        return await send(part.plain or part.text, None)
