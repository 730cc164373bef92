"""Fit a conversation into a prompt token budget: keep the system messages and the latest user message,
drop the oldest turns first.

Tokens are counted with litellm's ``token_counter`` for the model (its own tokenizer where litellm
knows one, tiktoken otherwise). Counting costs tens of microseconds per message, so a conversation
whose UTF-8 size already fits the budget is passed through uncounted: byte-level BPE tokenizers
never produce more tokens than bytes, so that bound is safe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workers.llm.litellm_loader import load_litellm
from workers.llm.local import LOCAL_PROVIDER
from workers.llm.metrics import CONTEXT_TRIMMED
from workers.vision.parts import content_text, image_count, text_only

__all__ = ["TrimResult", "context_budget", "count_message_tokens", "trim_to_budget"]

log = logging.getLogger(__name__)

Messages = list[dict[str, Any]]
TokenCounter = Callable[[Messages], int]

_PER_MESSAGE_OVERHEAD = 4  # role markers and separators every chat format adds around each message
_LOCAL_WINDOW = 2048  # n_ctx the local model is loaded with (workers.llm.local)
# What one image costs in prompt tokens, counted without looking at it: a 1024-pixel image is 765
# tokens on OpenAI's high-detail tiling (85 + 170 per 512-pixel tile), and providers are in that range.
IMAGE_TOKENS = 800


@dataclass(slots=True)
class TrimResult:
    messages: Messages
    tokens: int  # the count of what is kept (an upper bound when the count was skipped)
    dropped: int  # messages removed


def count_message_tokens(model: str, messages: Messages) -> int:
    # Images are counted at a fixed cost: litellm's counter would decode each data URL to measure it.
    images = sum(image_count(m) for m in messages)
    return int(load_litellm().token_counter(model=model, messages=text_only(messages))) + images * IMAGE_TOKENS


def context_budget(model: str, configured: int, max_tokens: int) -> int:
    """The prompt budget: the configured one, lowered to what the model's window leaves after the reply."""
    window: int | None = _LOCAL_WINDOW if model.startswith(f"{LOCAL_PROVIDER}/") else None
    if window is None:
        litellm = load_litellm()
        try:
            info = litellm.get_model_info(model)
            window = info.get("max_input_tokens") or info.get("max_tokens")
        except Exception as exc:  # litellm raises a bare Exception for unmapped models
            log.debug("litellm does not know the window of %s (%s); using the configured budget", model, exc)
    if not window:
        return configured
    return max(1, min(configured, int(window) - max_tokens))


def _upper_bound(messages: Messages) -> int:
    return (
        sum(
            len(content_text(m.get("content", "")).encode())
            + image_count(m) * IMAGE_TOKENS
            + _tool_bytes(m)
            + _PER_MESSAGE_OVERHEAD
            for m in messages
        )
        + 3
    )


def _tool_bytes(message: dict[str, Any]) -> int:
    # A tool loop step's calls are prompt tokens too; a plain chat message has none.
    calls = message.get("tool_calls")
    return (
        len(str(calls).encode()) + len(str(message.get("tool_call_id", "")))
        if calls or "tool_call_id" in message
        else 0
    )


def trim_to_budget(messages: Messages, budget: int, count: TokenCounter) -> TrimResult:
    """Drop the oldest non-system messages (never the latest user message) until ``count`` fits ``budget``."""
    bound = _upper_bound(messages)
    if bound <= budget:
        return TrimResult(messages, bound, 0)
    tokens = count(messages)
    if tokens <= budget:
        return TrimResult(messages, tokens, 0)
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=len(messages) - 1)
    # What follows the latest user message is the tool loop's steps (calls and their results): an
    # assistant tool call without its results, or results without their call, is an invalid request.
    droppable = [i for i, m in enumerate(messages) if m.get("role") != "system" and i < last_user]
    dropped: set[int] = set()
    kept = messages
    for index in droppable:  # oldest first
        dropped.add(index)
        kept = [m for i, m in enumerate(messages) if i not in dropped]
        tokens = count(kept)
        if tokens <= budget:
            break
    if tokens > budget:
        # The system prompt and the latest message alone exceed the budget: send them anyway, the
        # provider may still accept it, and an error there is reported like any other failure.
        log.warning("the system prompt and latest message take %d tokens, over the budget of %d", tokens, budget)
    if dropped:
        CONTEXT_TRIMMED.inc()
        log.info("trimmed %d of %d messages to fit %d prompt tokens", len(dropped), len(messages), budget)
    return TrimResult(kept, tokens, len(dropped))
