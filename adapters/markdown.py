"""Markdown as models write it, parsed once for every platform that needs it parsed.

``telegramify-markdown`` (pulldown-cmark underneath) turns Markdown into plain text plus Telegram
``MessageEntity`` objects; the Telegram sender sends that, the Slack sender uses its plain text for
notifications. One correction comes first: CommonMark treats ``<word ...>`` as raw HTML, which the
converter drops, so "if a<b and c>d" would lose "b and c". Models mean those characters literally,
so every ``<`` outside code (except an autolink such as ``<https://...>``) is escaped to ``\\<``
before parsing; inside code spans and fenced blocks a backslash would show, so code is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import telegramify_markdown

__all__ = ["escape_raw_html", "outside_code", "plain_text", "to_entities"]

_CODE = re.compile(r"(^[ \t]*```.*?(?:^[ \t]*```[^\n]*$|\Z)|``[^\n]*?``|`[^`\n]*`)", re.DOTALL | re.MULTILINE)
_TAG_OPENER = re.compile(r"<(?!(?:https?|mailto|ftp):)")


def outside_code(markdown: str, change: Callable[[str], str]) -> str:
    """Apply ``change`` to the prose of ``markdown`` only: code spans and fenced blocks stay as written."""
    parts = _CODE.split(markdown)
    return "".join(part if index % 2 else change(part) for index, part in enumerate(parts))


def escape_raw_html(markdown: str) -> str:
    """``<`` outside code becomes ``\\<``, so the parser keeps it as text instead of dropping an HTML tag."""
    return outside_code(markdown, lambda prose: _TAG_OPENER.sub(r"\\<", prose))


def to_entities(markdown: str) -> tuple[str, list[telegramify_markdown.MessageEntity]]:
    """Plain text and its entities (offsets in UTF-16 code units)."""
    return telegramify_markdown.convert(escape_raw_html(markdown), latex_escape=False)


def plain_text(markdown: str) -> str:
    """The text a reader sees, without Markdown markers."""
    return to_entities(markdown)[0]
