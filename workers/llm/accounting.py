"""Turning a litellm ``ModelResponse`` into an ``LLMResult``: text, tokens, cost, provider.

Shared by the base client and the resilience layer so both record every call the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from workers.components import Delta, LLMResult, ToolCall
from workers.llm.litellm_loader import load_litellm
from workers.llm.local import LOCAL_PROVIDER
from workers.llm.metrics import COST_UNKNOWN, LLM_CALLS, LLM_COST, LLM_TOKENS

__all__ = ["EmptyCompletionError", "completion_cost_usd", "deltas_from_stream", "result_from_response"]

log = logging.getLogger(__name__)


class EmptyCompletionError(RuntimeError):
    """A provider answered 200 without any text: treated as a failure so the chain moves on."""


def completion_cost_usd(response: Any, model: str, provider: str) -> float:
    """litellm's cost-map price of this response; 0 for the local model and for models the map lacks."""
    if provider == LOCAL_PROVIDER:
        return 0.0
    hidden = getattr(response, "_hidden_params", None) or {}
    known = hidden.get("response_cost")
    if isinstance(known, int | float):
        return float(known)
    litellm = load_litellm()
    try:
        return float(litellm.completion_cost(completion_response=response, model=model))
    except Exception as exc:  # litellm raises several types (NotFoundError, ModelNotMappedError, ValueError...)
        COST_UNKNOWN.labels(model=model).inc()
        log.debug("no price for %s in litellm's cost map (%s); recording cost 0", model, exc)
        return 0.0


def _provider_of(response: Any, model: str) -> str:
    hidden = getattr(response, "_hidden_params", None) or {}
    provider = hidden.get("custom_llm_provider")
    if provider:
        return str(provider)
    return model.split("/", 1)[0] if "/" in model else "openai"


def result_from_response(response: Any, model: str, latency_ms: float) -> LLMResult:
    """Build the result of one successful completion and count its tokens and cost."""
    choices = getattr(response, "choices", None) or []
    message = getattr(choices[0], "message", None) if choices else None
    text = str(getattr(message, "content", None) or "").strip()
    tool_calls = _tool_calls(message)
    if not text and not tool_calls:
        raise EmptyCompletionError(f"{model} returned no text")
    provider = _provider_of(response, model)
    usage = getattr(response, "usage", None)
    prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
    cost = completion_cost_usd(response, model, provider)
    LLM_CALLS.labels(provider=provider, outcome="ok").inc()
    LLM_TOKENS.labels(provider=provider, kind="prompt").inc(prompt_tokens)
    LLM_TOKENS.labels(provider=provider, kind="completion").inc(completion_tokens)
    LLM_COST.labels(provider=provider).inc(cost)
    return LLMResult(
        text=text,
        model=model,
        provider=provider,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=cost,
        latency_ms=latency_ms,
        tool_calls=tool_calls,
    )


def _tool_calls(message: Any) -> list[ToolCall]:
    """The tool calls of a litellm message (objects or dicts, as providers differ), in order."""
    calls: list[ToolCall] = []
    for index, call in enumerate(getattr(message, "tool_calls", None) or []):
        function = call.get("function") if isinstance(call, dict) else getattr(call, "function", None)
        if function is None:
            continue
        name = function.get("name") if isinstance(function, dict) else getattr(function, "name", None)
        arguments = function.get("arguments") if isinstance(function, dict) else getattr(function, "arguments", None)
        call_id = call.get("id") if isinstance(call, dict) else getattr(call, "id", None)
        if name:
            calls.append(ToolCall(id=str(call_id or f"call_{index}"), name=str(name), arguments=str(arguments or "{}")))
    return calls


async def deltas_from_stream(
    chunks: AsyncIterator[Any], model: str, messages: list[dict[str, Any]], started: float
) -> AsyncIterator[Delta]:
    """litellm's streamed chunks as ``Delta`` pieces; the last one carries the result, recorded like
    ``result_from_response`` (tokens and cost from the rebuilt response, so streaming costs what it costs).

    ``started`` is the ``time.perf_counter()`` of the request. An empty stream raises
    ``EmptyCompletionError`` (before any piece, so a fallback can still answer instead).
    """
    litellm = load_litellm()
    seen: list[Any] = []
    async for chunk in chunks:
        seen.append(chunk)
        choices = getattr(chunk, "choices", None) or []
        delta = getattr(choices[0], "delta", None) if choices else None
        text = getattr(delta, "content", None) if delta is not None else None
        if text:
            yield Delta(text=str(text))
    if not seen:
        raise EmptyCompletionError(f"{model} streamed nothing")
    response = litellm.stream_chunk_builder(seen, messages=messages)
    yield Delta(result=result_from_response(response, model, (time.perf_counter() - started) * 1000))
