"""Markdown (what models write) -> Discord messages: Discord renders Markdown itself, so only the split is ours.

Discord's Markdown covers what models write (bold, italics, lists, links, headings up to ``###``,
fenced code with a language), so the text goes out unchanged. The answer is split at 2,000
characters by ``adapters.text``, which never leaves a fenced code block open (a block longer than a
message is closed at the end of each part and reopened, with its language, in the next) and never
cuts inside an inline span, so every message renders on its own (docs/decisions.md, "Native formatting").
"""

from __future__ import annotations

from adapters.text import PLATFORM_LIMITS, split_message

__all__ = ["render_markdown"]

_LIMIT, _MEASURE = PLATFORM_LIMITS["discord"]


def render_markdown(markdown: str, limit: int = _LIMIT) -> list[str]:
    """The messages of one answer, each within ``limit`` characters and each valid Markdown on its own."""
    return split_message(markdown, limit, measure=_MEASURE)
