"""The tool loop: ask the model with tools, run the calls it asks for, feed the results back, repeat.

Bounded three ways, per message, and always ending in an answer:

- ``max_steps`` rounds of tool calls; the model's next request for tools is not run;
- ``total_timeout_s`` for the whole loop: a call gets at most what is left (and at most
  ``call_timeout_s``), and no new round starts once it is spent;
- ``max_result_chars`` per tool result: longer ones are cut, and say so.

When a limit ends the loop, one last request *without* tools asks the model to answer from what it
has, so the user gets an answer, not silence. A tool that raises, answers an error or does not
answer in time is reported to the model as ``error: ...`` in its result; so is a tool the model
names that was not offered (it is never run). Every step is one ``complete`` of the layer below,
so the resilience chain, the cache and the token and cost accounting see each one; the result
returned sums the tokens and cost of all steps.

Caching: a step whose messages hold results of a tool not declared cacheable goes with
``use_cache=False``, so an answer built on live data is never stored nor served from the cache.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

from workers.components import LLM, LLMRequest, LLMResult, ToolCall
from workers.tools.base import ToolCallRecord, ToolContext, ToolError, ToolSpec, ToolsReport
from workers.tools.metrics import LOOP_STOPPED, TOOL_CALLS, TOOL_SECONDS
from workers.tools.settings import ToolsSettings
from workers.tools.toolbox import Toolbox

__all__ = ["LIMIT_NOTE", "run_tool_loop"]

log = logging.getLogger(__name__)

LIMIT_NOTE = (
    "The tools may not be used any more for this message. Answer the user now, from what the tools "
    "returned so far; say briefly if something could not be looked up."
)
_ERROR_CHARS = 300


@dataclass(slots=True)
class _Totals:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    errors: list[str] = field(default_factory=list)
    all_cached: bool = True

    def add(self, result: LLMResult) -> None:
        self.prompt_tokens += result.prompt_tokens
        self.completion_tokens += result.completion_tokens
        self.cost_usd += result.cost_usd
        self.latency_ms += result.latency_ms
        self.errors.extend(result.errors)
        self.all_cached = self.all_cached and result.cached

    def answer(self, last: LLMResult) -> LLMResult:
        return replace(
            last,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cost_usd=self.cost_usd,
            latency_ms=self.latency_ms,
            errors=self.errors,
            cached=self.all_cached,
            tool_calls=[],
        )


def _assistant_message(result: LLMResult) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": result.text or None,
        "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in result.tool_calls
        ],
    }


def _cut(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    return f"{text[:limit]}\n[cut: {len(text) - limit} more characters]", True


async def _run_call(
    call: ToolCall,
    tools: dict[str, ToolSpec],
    toolbox: Toolbox,
    context: ToolContext,
    settings: ToolsSettings,
    timeout_s: float,
) -> tuple[str, ToolCallRecord, ToolSpec | None]:
    spec = tools.get(call.name)
    started = time.perf_counter()
    if spec is None:
        record = ToolCallRecord(call.name, "", 0.0, "unknown_tool")
        TOOL_CALLS.labels(tool=call.name[:64], outcome=record.outcome).inc()
        return f"error: there is no tool named {call.name!r} here", record, None
    outcome = "ok"
    try:
        arguments = json.loads(call.arguments or "{}")
        if not isinstance(arguments, dict):
            raise ValueError("the arguments must be a JSON object")
    except ValueError as exc:
        outcome, text = "bad_arguments", f"error: the arguments are not valid JSON: {exc}"[:_ERROR_CHARS]
    else:
        try:
            if timeout_s <= 0:
                raise TimeoutError
            text = await asyncio.wait_for(toolbox.call(spec, arguments, context), timeout_s)
        except TimeoutError:
            outcome, text = "timeout", f"error: the tool did not answer within {timeout_s:.1f} s"
        except ToolError as exc:
            outcome, text = "error", f"error: {' '.join(str(exc).split())}"[:_ERROR_CHARS]
        except Exception as exc:  # any failure of a tool is the model's to hear about, never the user's reply
            outcome, text = "error", f"error: {type(exc).__name__}: {' '.join(str(exc).split())}"[:_ERROR_CHARS]
            log.info("tool %s failed: %s", spec.name, text)
    elapsed = time.perf_counter() - started
    text, truncated = _cut(text, settings.max_result_chars)
    TOOL_CALLS.labels(tool=spec.name, outcome=outcome).inc()
    TOOL_SECONDS.labels(tool=spec.name).observe(elapsed)
    record = ToolCallRecord(spec.name, spec.server, elapsed * 1000, outcome, len(text), truncated)
    return text, record, spec


async def run_tool_loop(
    llm: LLM,
    request: LLMRequest,
    tools: list[ToolSpec],
    toolbox: Toolbox,
    context: ToolContext,
    settings: ToolsSettings,
    report: ToolsReport,
) -> LLMResult:
    by_wire = {spec.wire_name: spec for spec in tools}
    definitions = [spec.definition() for spec in tools]
    messages = list(request.messages)
    deadline = time.monotonic() + settings.total_timeout_s
    totals = _Totals()
    live = False  # a result of a tool not declared cacheable is in the messages
    stopped = "max_steps"
    for _ in range(settings.max_steps):
        step = replace(request, messages=list(messages), tools=definitions, use_cache=request.use_cache and not live)
        result = await llm.complete(step)
        totals.add(result)
        report.steps += 1
        if not result.tool_calls or result.degraded:
            return totals.answer(result)
        messages.append(_assistant_message(result))
        remaining = min(settings.call_timeout_s, deadline - time.monotonic())
        outcomes = await asyncio.gather(
            *(_run_call(call, by_wire, toolbox, context, settings, remaining) for call in result.tool_calls)
        )
        for call, (text, record, spec) in zip(result.tool_calls, outcomes, strict=True):
            report.calls.append(record)
            name = spec.wire_name if spec is not None else call.name
            messages.append({"role": "tool", "tool_call_id": call.id, "name": name, "content": text})
            live = live or spec is None or not spec.cacheable
        if time.monotonic() >= deadline:
            stopped = "timeout"
            break
    report.stopped = stopped
    LOOP_STOPPED.labels(limit=stopped).inc()
    log.info("tool loop stopped by its %s limit after %d step(s): asking for the answer", stopped, report.steps)
    final = replace(
        request, messages=[*messages, {"role": "system", "content": LIMIT_NOTE}], tools=None, use_cache=False
    )
    result = await llm.complete(final)
    totals.add(result)
    report.steps += 1
    return totals.answer(result)
