"""``tools``: tool calling over any ``LLM``: MCP servers and built-in tools, bounded and allow-listed.

For each request the enhancement asks the toolbox which tools this message may use (the
allow-list, ``workers.tools.toolbox``; servers that are down are left out, counted and logged),
and, when there are any, runs the tool loop (``workers.tools.loop``) over the layer below: each
step is one ``complete`` below, so it sits **above** ``llm_resilience`` and every step goes
through the provider chain, the cache and the accounting. Without tools for the message, or with
a model that cannot call tools (litellm's ``supports_function_calling``, or ``[tools] models``;
the offline SmolLM2 cannot), the request goes straight below, unchanged.

Its settings are ``[tools]`` (docs/tools.md); the patch's config is only its switch, rollout and
health. Its fallback, as for any patch, is the layer below's answer to the original request: the
plain answer without tools, counted and logged by the framework. What tool calling did for the
message (calls, unavailable servers, the limit that stopped the loop) is recorded in the message
report, so the analytics event of the reply carries it (``tools``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from patches.runtime import make_apply_function
from patches.spec import PatchConfig, PatchSpec
from workers.components import LLM, ComponentKind, Delta, LLMRequest, LLMResult
from workers.llm.capabilities import supports_tools
from workers.report import current_report
from workers.tools.base import ToolSource, ToolsReport
from workers.tools.builtins import BuiltinTools
from workers.tools.loop import run_tool_loop
from workers.tools.mcp import McpServer
from workers.tools.metrics import NOT_OFFERED
from workers.tools.settings import ToolsSettings
from workers.tools.toolbox import Toolbox, context_of

__all__ = ["SPEC", "ToolCallingLLM", "ToolsConfig", "apply_tools_patch"]

log = logging.getLogger(__name__)


class ToolsConfig(PatchConfig, patch="tools", default_enabled=True):
    """The switch, rollout and health; the tools, allow-list and limits are ``[tools]`` (docs/tools.md).

    On by default: with no MCP server and no built-in configured there is nothing to offer, and
    every request goes straight below.
    """


class ToolCallingLLM:
    def __init__(
        self,
        below: LLM,
        config: ToolsConfig,
        settings: ToolsSettings,
        *,
        model: str,
        memory: Any = None,
        redis_url: str | None = None,
        sources: list[ToolSource] | None = None,
    ) -> None:
        self.below = below
        self.config = config
        self.settings = settings
        if sources is None:
            sources = [McpServer(server, settings) for server in settings.mcp]
            if settings.builtins:
                sources.append(BuiltinTools(list(settings.builtins), memory, redis_url))
        self.toolbox = Toolbox(settings, sources)
        self.model = model
        self.capable = supports_tools(model, tuple(settings.models))
        if self.toolbox.sources and not self.capable:
            # Once per worker: the configuration does not change while it runs.
            log.warning(
                "tools: the model %s cannot call tools (litellm does not list it; [tools] models can declare it): "
                "no tools are offered",
                model,
            )

    async def complete(self, request: LLMRequest) -> LLMResult:
        offer = await self._offer(request)
        if offer is None:
            return await self.below.complete(request)
        return await self._loop(request, *offer)

    async def stream(self, request: LLMRequest) -> AsyncIterator[Delta]:
        """Without tools for this message, the layer below's stream; with tools, the loop's answer in one piece.

        The steps of a tool loop are requests and tool calls, not words for the user: the answer exists
        once the last step is done, so it is shown whole (the platform shows "typing…" meanwhile).
        """
        offer = await self._offer(request)
        if offer is None:
            async for delta in self.below.stream(request):
                yield delta
            return
        result = await self._loop(request, *offer)
        yield Delta(text=result.text, result=result)

    async def _offer(self, request: LLMRequest) -> tuple[list[Any], Any, ToolsReport] | None:
        """The tools this message may use, its context and its report; None when it goes straight below."""
        if request.tools is not None or not self.toolbox.sources:
            return None
        if not self.capable:
            NOT_OFFERED.labels(reason="model_without_tools").inc()
            return None
        context = context_of(request)
        tools, unavailable = await self.toolbox.available(context)
        report = ToolsReport(offered=len(tools), unavailable=unavailable)
        message_report = current_report()
        if message_report is not None:
            message_report.tools = report.as_json()
        if not tools:
            NOT_OFFERED.labels(reason="none_available" if unavailable else "none_allowed").inc()
            return None
        return tools, context, report

    async def _loop(self, request: LLMRequest, tools: list[Any], context: Any, report: ToolsReport) -> LLMResult:
        try:
            return await run_tool_loop(self.below, request, tools, self.toolbox, context, self.settings, report)
        finally:
            message_report = current_report()
            if message_report is not None:
                message_report.tools = report.as_json()

    async def aclose(self) -> None:
        await self.toolbox.aclose()


def _model(deps: Mapping[str, Any]) -> str:
    """The model the chain asks first: it decides whether tools are offered at all."""
    from workers.llm.settings import LLMSettings

    providers = LLMSettings().providers
    return providers[0].model if providers else str(deps.get("base_llm_model") or "")


def _build(below: LLM, config: ToolsConfig, deps: Mapping[str, Any]) -> ToolCallingLLM:
    return ToolCallingLLM(
        below,
        config,
        ToolsSettings(),
        model=_model(deps),
        memory=deps.get("memory"),
        redis_url=deps.get("redis_url"),
    )


def _validate(method: str, result: LLMResult) -> str | None:
    return None if result.text.strip() else "empty answer"


SPEC = PatchSpec(
    name="tools",
    kind=ComponentKind.LLM,
    interface=LLM,
    config_cls=ToolsConfig,
    factory=_build,
    enhances=("complete", "stream"),
    above=("llm_resilience",),  # every step of the loop goes through the chain, the cache and the accounting
    validate=_validate,
    description="tool calling: MCP servers and built-in tools, allow-listed, bounded in steps, time and size",
)
apply_tools_patch = make_apply_function(SPEC)
