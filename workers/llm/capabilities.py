"""What a model can do, as litellm knows it, plus what the operator declares.

``supports_tools(model)``: litellm's ``supports_function_calling`` (its model map), or a pattern of
``[tools] models`` for models litellm does not know (a self-hosted OpenAI-compatible server, the LLM
simulator). The offline SmolLM2 and the echo model never call tools. Answers are cached per process.

``plain_messages(messages)`` rewrites the tool loop's steps as ordinary text turns, for a link of
the chain that cannot take ``tool`` messages (a fallback provider answering a request mid-loop).
"""

from __future__ import annotations

import fnmatch
import logging
from functools import lru_cache
from typing import Any

from workers.llm.echo import ECHO_MODEL
from workers.llm.litellm_loader import load_litellm
from workers.llm.local import LOCAL_PROVIDER

__all__ = ["declared_tool_models", "plain_messages", "supports_tools"]

log = logging.getLogger(__name__)


def declared_tool_models() -> tuple[str, ...]:
    from workers.tools.settings import ToolsSettings

    return tuple(ToolsSettings().models)


@lru_cache(maxsize=64)
def _supports(model: str, declared: tuple[str, ...]) -> bool:
    if any(fnmatch.fnmatchcase(model, pattern) for pattern in declared):
        return True
    if model == ECHO_MODEL or model.startswith(f"{LOCAL_PROVIDER}/"):
        return False
    try:
        return bool(load_litellm().supports_function_calling(model=model))
    except Exception as exc:  # litellm raises for models its map lacks
        log.debug("litellm does not know whether %s calls tools (%s): assuming it does not", model, exc)
        return False


def supports_tools(model: str, declared: tuple[str, ...] | None = None) -> bool:
    return _supports(model, declared if declared is not None else declared_tool_models())


def plain_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same conversation with tool calls and results as text (unchanged when it has none)."""
    if not any(m.get("role") == "tool" or m.get("tool_calls") for m in messages):
        return messages
    plain: list[dict[str, Any]] = []
    for message in messages:
        if message.get("tool_calls"):
            asked = "; ".join(
                f"{call['function']['name']}({call['function'].get('arguments', '')})" for call in message["tool_calls"]
            )
            text = f"{message.get('content') or ''}\n[I called the tools: {asked}]".strip()
            plain.append({"role": "assistant", "content": text})
        elif message.get("role") == "tool":
            plain.append(
                {"role": "user", "content": f"[Result of the tool {message.get('name', '')}]: {message.get('content')}"}
            )
        else:
            plain.append(message)
    return plain
