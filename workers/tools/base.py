"""The values of tool calling: a tool as offered to the model, where a call is made, and its record.

A tool has two names. ``name`` is what the operator and the analytics see and what allow-lists
match (``example.add``, ``current_time``); ``wire_name`` is what the model sees, within the
``^[A-Za-z0-9_-]{1,64}$`` every provider accepts (``example__add``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "BUILTIN_SERVER",
    "ToolCallRecord",
    "ToolContext",
    "ToolError",
    "ToolSource",
    "ToolSpec",
    "ToolsReport",
    "wire_name",
]

BUILTIN_SERVER = "builtin"


def wire_name(server: str, tool: str) -> str:
    raw = tool if server == BUILTIN_SERVER else f"{server}__{tool}"
    cleaned = "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in raw)
    return cleaned[:64]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    server: str  # the MCP server's configured name, or "builtin"
    tool: str  # the tool's own name on that server
    description: str
    parameters: dict[str, Any]  # JSON Schema of the arguments
    cacheable: bool = False  # its result is a pure function of its arguments: answers built on it may be cached

    @property
    def name(self) -> str:
        return self.tool if self.server == BUILTIN_SERVER else f"{self.server}.{self.tool}"

    @property
    def wire_name(self) -> str:
        return wire_name(self.server, self.tool)

    def definition(self) -> dict[str, Any]:
        """litellm's (OpenAI's) tool definition."""
        parameters = self.parameters or {"type": "object", "properties": {}}
        return {
            "type": "function",
            "function": {"name": self.wire_name, "description": self.description[:1024], "parameters": parameters},
        }


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Who a tool call is for: built-in tools act only on this user's own data."""

    user_key: str | None = None
    conversation_key: str | None = None
    platform: str = ""
    bot_id: str = ""
    is_direct: bool = False
    workspace: str = ""
    conversation_id: str = ""
    timezone: str | None = None
    envelope: Any = None  # the message being answered, when the handler passed it


class ToolError(RuntimeError):
    """A tool answered with an error (MCP ``isError``), reported to the model as such."""


class ToolSource(Protocol):
    """Where tools come from and are called: one MCP server, or the built-ins."""

    name: str

    async def list_tools(self) -> list[ToolSpec]:
        """The tools available now; raises when the source is unavailable."""
        ...

    async def call(self, tool: str, arguments: dict[str, Any], context: ToolContext) -> str:
        """The tool's result as text; raises ToolError (or anything) when it failed."""
        ...


@dataclass(slots=True)
class ToolCallRecord:
    """One call, as the message's analytics event records it (no arguments, no result text)."""

    tool: str
    server: str
    duration_ms: float
    outcome: str  # ok, error, timeout, unknown_tool, bad_arguments
    result_chars: int = 0
    truncated: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "server": self.server,
            "duration_ms": round(self.duration_ms, 1),
            "outcome": self.outcome,
            "result_chars": self.result_chars,
            "truncated": self.truncated,
        }


@dataclass(slots=True)
class ToolsReport:
    """What tool calling did for one message: the calls, the sources that were unavailable, the limits hit."""

    offered: int = 0
    calls: list[ToolCallRecord] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # server -> reason
    steps: int = 0
    stopped: str | None = None  # "max_steps" or "timeout" when a limit ended the loop

    def as_json(self) -> dict[str, Any]:
        return {
            "offered": self.offered,
            "steps": self.steps,
            "stopped": self.stopped,
            "calls": [call.as_json() for call in self.calls],
            "unavailable": dict(self.unavailable),
        }
