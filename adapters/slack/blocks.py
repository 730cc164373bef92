"""Markdown (what models write) -> Slack messages: one Block Kit ``markdown`` block each, plus a plain fallback.

Decisions (docs/decisions.md, "Native formatting"):

- Block Kit's ``markdown`` block renders standard Markdown (bold, lists, links, fenced code, tables)
  as Slack's own clients show it, so the model's text goes in unchanged: no hand-written
  Markdown-to-mrkdwn rewriting, no escaping of ``&``, ``<`` and ``>``.
- One block per message, at most ``MARKDOWN_BLOCK_LIMIT`` (12,000) characters: Slack's limit is
  the sum of every ``markdown`` block in one payload, so more blocks would not carry more text. The
  answer is split first (``adapters.text``, which never leaves a code block open) and each part is
  its own message and block.
- ``text`` is still sent: Slack shows it in notifications and where blocks cannot be drawn. It is
  the part as plain prose (Markdown markers removed by ``adapters.markdown``, the parser the Telegram
  sender uses), cut to ``NOTIFICATION_CHARS``, with ``&``, ``<`` and ``>`` escaped as Slack asks.
- Model output never pings anyone: ``text`` is escaped, and in the block a zero-width space is put
  after the ``<`` of ``<!channel>``, ``<!here>``, ``<@U…>``, ``<#C…>`` and the like outside code, so
  Slack's special syntax cannot be injected through an answer; it still reads the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from adapters.markdown import outside_code, plain_text
from adapters.text import PLATFORM_LIMITS, split_message

__all__ = ["MARKDOWN_BLOCK_LIMIT", "NOTIFICATION_CHARS", "SlackPart", "defuse_special_syntax", "render_markdown"]

MARKDOWN_BLOCK_LIMIT = 12_000
NOTIFICATION_CHARS = 3_000

_LIMIT, _MEASURE = PLATFORM_LIMITS["slack"]
_SPECIAL = re.compile(r"<(?=[!@#])")


@dataclass(frozen=True, slots=True)
class SlackPart:
    """One ``chat.postMessage``: the notification text and the blocks."""

    text: str
    blocks: list[dict[str, Any]]


def render_markdown(markdown: str, limit: int = _LIMIT) -> list[SlackPart]:
    """The messages of one answer, each a single ``markdown`` block within ``limit`` characters."""
    if limit > MARKDOWN_BLOCK_LIMIT:
        raise ValueError(f"a markdown block holds at most {MARKDOWN_BLOCK_LIMIT} characters")
    return [
        SlackPart(text=_notification(chunk), blocks=[{"type": "markdown", "text": defuse_special_syntax(chunk)}])
        for chunk in split_message(markdown, limit, measure=_defused_length)
    ]


def defuse_special_syntax(markdown: str) -> str:
    """``<!channel>`` and friends outside code become look-alikes Slack does not act on."""
    return outside_code(markdown, lambda prose: _SPECIAL.sub("<\u200b", prose))


def _defused_length(markdown: str) -> int:
    """The length once defused (at most one added character per ``<!``, ``<@``, ``<#``), so parts fit after it."""
    return _MEASURE(markdown) + len(_SPECIAL.findall(markdown))


def _notification(markdown: str) -> str:
    plain = plain_text(markdown).strip() or markdown.strip()
    if len(plain) > NOTIFICATION_CHARS:
        cut = plain.rfind(" ", 0, NOTIFICATION_CHARS - 1)
        plain = plain[: cut if cut > 0 else NOTIFICATION_CHARS - 1] + "…"
    return plain.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
