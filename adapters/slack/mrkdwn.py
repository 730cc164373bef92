"""Markdown (what models write) -> Slack mrkdwn (what Slack renders). Code is left untouched."""

from __future__ import annotations

import re

__all__ = ["markdown_to_mrkdwn"]

_CODE = re.compile(r"(```.*?(?:```|$)|`[^`\n]+`)", re.DOTALL)
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)"), r"<\2|\1>"),  # [text](url)
    (re.compile(r"(?<![*\w])\*(?!\*)([^*\n]+?)\*(?![*\w])"), r"_\1_"),  # *italic* before bold is rewritten
    (re.compile(r"\*\*(.+?)\*\*|__(.+?)__"), r"*\1\2*"),
    (re.compile(r"~~(.+?)~~"), r"~\1~"),
    (re.compile(r"^#{1,6}\s+(.+?)\s*#*$", re.MULTILINE), r"*\1*"),  # headings become bold lines
    (re.compile(r"^(\s*)[-+]\s+", re.MULTILINE), "\\1• "),
)


def _escape(text: str) -> str:
    # Slack treats &, < and > as control characters; links we build afterwards keep theirs.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markdown_to_mrkdwn(text: str) -> str:
    parts = _CODE.split(text)
    out: list[str] = []
    for index, part in enumerate(parts):
        if index % 2 == 1:
            out.append(_escape(part))  # code spans keep their content, only entities are escaped
            continue
        converted = _escape(part)
        for pattern, replacement in _RULES:
            converted = pattern.sub(replacement, converted)
        out.append(converted)
    return "".join(out)
