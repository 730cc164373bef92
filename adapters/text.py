"""Splitting long replies into platform-sized messages without breaking prose or code.

Chunks are cut at the gentlest boundary that fits: paragraphs, then lines, then sentences, then
words, and only as a last resort inside a word. A fenced code block (```) is never cut in the
middle of a chunk: when one alone is longer than the limit, its fence is closed at the end of each
chunk and reopened (with its language tag) at the start of the next, so every chunk renders.

Inside a paragraph, a cut between sentences or words never falls within an inline span (`code`,
**bold**, ~~strike~~, a [link](url)) that fits whole: every chunk parses as the Markdown it was, so
each platform's conversion of a chunk (adapters/telegram/formatting.py, adapters/slack/blocks.py)
never meets half an entity.

Limits used by the senders (``PLATFORM_LIMITS``): Discord 2000 characters, Telegram 4096 UTF-16
code units (Telegram counts that way, so emoji cost two), Slack 12,000 characters (the most one
Block Kit ``markdown`` block, and one payload of them, holds).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["PLATFORM_LIMITS", "split_message", "utf16_length"]

Measure = Callable[[str], int]

_FENCE = "```"
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


def utf16_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


PLATFORM_LIMITS: dict[str, tuple[int, Measure]] = {
    "discord": (2000, len),
    "telegram": (4096, utf16_length),
    "slack": (12_000, len),
}


@dataclass(slots=True)
class _Block:
    text: str
    is_code: bool
    separator: str  # whitespace that stood between this block and the previous one


def split_message(text: str, limit: int, *, measure: Measure = len) -> list[str]:
    """Split ``text`` into chunks each no longer than ``limit`` (as counted by ``measure``)."""
    if limit < 16:
        raise ValueError("a limit under 16 leaves no room for a code fence")
    if not text.strip():
        return []
    if measure(text) <= limit:
        return [text]
    pieces: list[tuple[str, str]] = []
    for block in _blocks(text):
        parts = _split_code(block.text, limit, measure) if block.is_code else _split_prose(block.text, limit, measure)
        for index, part in enumerate(parts):
            pieces.append((block.separator if index == 0 else "\n", part))
    return _pack(pieces, limit, measure)


def _blocks(text: str) -> list[_Block]:
    """Paragraphs of prose and whole fenced code blocks, in order."""
    blocks: list[_Block] = []
    current: list[str] = []
    in_code = False
    blank_lines = 0

    def flush(is_code: bool) -> None:
        nonlocal blank_lines
        if current:
            blocks.append(_Block("\n".join(current), is_code, "\n" * (blank_lines + 1)))
            current.clear()
            blank_lines = 0

    for line in text.split("\n"):
        is_fence = line.lstrip().startswith(_FENCE)
        if in_code:
            current.append(line)
            if is_fence:
                in_code = False
                flush(is_code=True)
        elif is_fence:
            flush(is_code=False)
            in_code = True
            current.append(line)
        elif not line.strip():
            flush(is_code=False)
            blank_lines += 1
        else:
            current.append(line)
    flush(is_code=in_code)
    return blocks


def _split_prose(text: str, limit: int, measure: Measure) -> list[str]:
    if measure(text) <= limit:
        return [text]
    out: list[str] = []
    for line in text.split("\n"):
        out.extend(_split_by(line, limit, measure, level=0))
    return out


_LEVELS: tuple[Callable[[str], list[str]], ...] = (
    lambda s: [part for part in _SENTENCE_END.split(s) if part],
    lambda s: s.split(" "),
)


def _split_by(text: str, limit: int, measure: Measure, level: int) -> list[str]:
    """Sentences, then words, packed back together up to the limit; words longer than it are cut."""
    if measure(text) <= limit:
        return [text]
    if level >= len(_LEVELS):
        return _hard_cut(text, limit, measure)
    parts: list[str] = []
    for part in _keep_spans_whole(_LEVELS[level](text)):
        parts.extend(_split_by(part, limit, measure, level + 1))
    return _pack([(" ", part) for part in parts], limit, measure)


_CODE_SPAN = re.compile(r"`[^`]*`")
_OPEN_LINK = re.compile(r"\[[^\]]*$|\]\([^)]*$")


def _opens_span(text: str) -> bool:
    """True when ``text`` leaves an inline Markdown span open: `code`, **bold**, ~~strike~~ or a [link](url)."""
    if text.count("`") % 2:
        return True
    outside_code = _CODE_SPAN.sub("", text)
    return (
        outside_code.count("**") % 2 == 1 or outside_code.count("~~") % 2 == 1 or bool(_OPEN_LINK.search(outside_code))
    )


def _keep_spans_whole(parts: list[str]) -> list[str]:
    """Rejoin sentences or words that sit inside one inline span, so no cut falls within it (while it fits)."""
    out: list[str] = []
    pending: list[str] = []
    for part in parts:
        pending.append(part)
        if not _opens_span(" ".join(pending)):
            out.append(" ".join(pending))
            pending = []
    # A marker never closed is a literal character, not a span: its parts stay separate.
    return out + pending


def _hard_cut(text: str, limit: int, measure: Measure) -> list[str]:
    chunks: list[str] = []
    current = ""
    for char in text:
        if current and measure(current + char) > limit:
            chunks.append(current)
            current = ""
        current += char
    if current:
        chunks.append(current)
    return chunks


def _split_code(text: str, limit: int, measure: Measure) -> list[str]:
    if measure(text) <= limit:
        return [text]
    lines = text.split("\n")
    opener = lines[0].strip() or _FENCE
    body = lines[1:]
    if body and body[-1].strip().startswith(_FENCE):
        body = body[:-1]
    # Each chunk is opener + "\n" + body + "\n" + closing fence.
    budget = limit - measure(opener) - measure(_FENCE) - 2
    body_lines: list[str] = []
    for line in body:
        body_lines.extend(_hard_cut(line, budget, measure) if measure(line) > budget else [line])
    chunks: list[str] = []
    current: list[str] = []
    for line in body_lines:
        if current and measure("\n".join([*current, line])) > budget:
            chunks.append("\n".join(current))
            current = []
        current.append(line)
    if current:
        chunks.append("\n".join(current))
    return [f"{opener}\n{chunk}\n{_FENCE}" for chunk in chunks]


def _pack(pieces: list[tuple[str, str]], limit: int, measure: Measure) -> list[str]:
    chunks: list[str] = []
    current = ""
    for separator, piece in pieces:
        if not current:
            current = piece
        elif measure(current + separator + piece) <= limit:
            current += separator + piece
        else:
            chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return [chunk.strip("\n") for chunk in chunks if chunk.strip()]
