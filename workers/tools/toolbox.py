"""Which tools one message may use, and calling them: the sources, the allow-list, the context.

The allow-list decides per message, from where it was said:

- a direct message gets the tools matching ``[tools] direct_messages`` (default ``["*"]``: all of them);
- every ``[[tools.allow]]`` rule whose ``platform``, ``conversation`` and ``workspace`` (each
  optional) match the message adds its ``tools`` patterns;
- anywhere else, nothing: a tool not allowed is neither listed for the model nor callable, even if
  the model names it.

Patterns match the tool's operator-facing name (``example.add``, ``example.*``, ``current_time``)
with shell-style wildcards. Sources are asked for their tools only when some pattern applies, so a
message in a channel without rules never connects to an MCP server.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from typing import Any

from workers.components import LLMRequest
from workers.tools.base import ToolContext, ToolSource, ToolSpec
from workers.tools.settings import ToolsSettings

__all__ = ["Toolbox", "allowed_patterns", "context_of"]

log = logging.getLogger(__name__)


def context_of(request: LLMRequest) -> ToolContext:
    """Where the message being answered was said: the handler passes its envelope in ``metadata``."""
    envelope: Any = request.metadata.get("envelope")
    if envelope is None:
        return ToolContext(user_key=request.user_id, conversation_key=request.conversation_key)
    hints = envelope.hints or {}
    platform = str(envelope.platform)
    workspace = str(envelope.bot_id) if platform == "slack" else str(hints.get("guild_id") or "")
    timezone = hints.get("timezone")
    return ToolContext(
        user_key=envelope.user_key,
        conversation_key=envelope.conversation_key,
        platform=platform,
        bot_id=envelope.bot_id,
        is_direct=bool(envelope.is_direct),
        workspace=workspace,
        conversation_id=str(envelope.conversation_id),
        timezone=str(timezone) if timezone else None,
        envelope=envelope,
    )


def allowed_patterns(settings: ToolsSettings, context: ToolContext) -> list[str]:
    patterns = list(settings.direct_messages) if context.is_direct else []
    for rule in settings.allow:
        if rule.platform is not None and rule.platform != context.platform:
            continue
        if rule.conversation is not None and rule.conversation != context.conversation_id:
            continue
        if rule.workspace is not None and rule.workspace != context.workspace:
            continue
        patterns.extend(rule.tools)
    return patterns


def _allowed(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


class Toolbox:
    def __init__(self, settings: ToolsSettings, sources: list[ToolSource]) -> None:
        self.settings = settings
        self.sources = {source.name: source for source in sources}

    async def available(self, context: ToolContext) -> tuple[list[ToolSpec], dict[str, str]]:
        """The tools this message may use now, and the sources that could not be asked (name -> reason)."""
        patterns = allowed_patterns(self.settings, context)
        if not patterns or not self.sources:
            return [], {}
        names = list(self.sources)
        listed = await asyncio.gather(*(self.sources[name].list_tools() for name in names), return_exceptions=True)
        tools: list[ToolSpec] = []
        unavailable: dict[str, str] = {}
        seen: set[str] = set()
        for name, result in zip(names, listed, strict=True):
            if isinstance(result, BaseException):
                unavailable[name] = str(getattr(result, "reason", "") or f"{type(result).__name__}: {result}")[:300]
                continue
            for spec in result:
                if spec.wire_name in seen or not _allowed(spec.name, patterns):
                    continue
                seen.add(spec.wire_name)
                tools.append(spec)
        return tools, unavailable

    async def call(self, spec: ToolSpec, arguments: dict[str, Any], context: ToolContext) -> str:
        return await self.sources[spec.server].call(spec.tool, arguments, context)

    async def aclose(self) -> None:
        for source in self.sources.values():
            closer = getattr(source, "aclose", None)
            if closer is not None:
                try:
                    await closer()
                except Exception as exc:  # shutting down: report and go on closing the rest
                    log.warning("closing tool source %s failed: %r", source.name, exc)
