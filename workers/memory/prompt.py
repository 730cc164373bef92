"""Recalled memories as a compact, dated block for the LLM prompt, under a token budget."""

from __future__ import annotations

from datetime import datetime

from workers.components import Recalled

__all__ = ["approx_tokens", "format_memories", "relative_age"]

_HEADER = "Things remembered from earlier conversations (oldest first):"
_MAX_MEMORY_CHARS = 400  # one long turn must not eat the whole budget


def approx_tokens(text: str) -> int:
    """About four characters a token for English: close enough to keep a budget, no tokenizer needed."""
    return (len(text) + 3) // 4


def relative_age(then: datetime, now: datetime) -> str:
    seconds = (now - then).total_seconds()
    if seconds < 0:
        return "just now"
    minutes, hours, days = seconds / 60, seconds / 3600, seconds / 86400
    if minutes < 1:
        return "just now"
    if hours < 1:
        return f"{int(minutes)} minute{'s' if int(minutes) != 1 else ''} ago"
    if days < 1:
        return f"{int(hours)} hour{'s' if int(hours) != 1 else ''} ago"
    if days < 2:
        return "yesterday"
    if days < 14:
        return f"{int(days)} days ago"
    if days < 60:
        return f"{int(days // 7)} weeks ago"
    if days < 365:
        return f"{int(days // 30)} months ago"
    years = int(days // 365)
    return f"{years} year{'s' if years != 1 else ''} ago"


def _line(memory: Recalled, now: datetime) -> str:
    turn = memory.turn
    when = turn.timestamp.astimezone(now.tzinfo) if now.tzinfo else turn.timestamp
    speaker = "you (the assistant)" if turn.role == "assistant" else (turn.author_name or "the user")
    said = " ".join(turn.text.split())
    if len(said) > _MAX_MEMORY_CHARS:
        said = said[: _MAX_MEMORY_CHARS - 1] + "…"
    return f"- {when:%Y-%m-%d} ({relative_age(turn.timestamp, now)}), {speaker}: {said}"


def format_memories(recalled: list[Recalled], budget_tokens: int, now: datetime) -> str:
    """The most relevant memories that fit ``budget_tokens``, listed oldest first; "" when none fit.

    Memories are admitted by relevance (the order ``recall`` returns) and then printed in time order,
    so the model reads a little story and can say "you told me last week...".
    """
    if budget_tokens <= 0 or not recalled:
        return ""
    used = approx_tokens(_HEADER) + 1
    admitted: list[Recalled] = []
    for memory in recalled:
        cost = approx_tokens(_line(memory, now)) + 1
        if used + cost > budget_tokens:
            continue  # a shorter, less relevant memory may still fit
        admitted.append(memory)
        used += cost
    if not admitted:
        return ""
    admitted.sort(key=lambda m: m.turn.timestamp)
    return "\n".join([_HEADER, *(_line(m, now) for m in admitted)])
