"""Configuration of tool calling: ``[tools]`` in patchbay.toml, ``PATCHBAY_TOOLS_*`` in the environment.

MCP servers are ``[[tools.mcp]]`` tables or, winning over them, the same list as JSON in
``PATCHBAY_TOOLS_MCP``; allow-list rules are ``[[tools.allow]]`` tables or ``PATCHBAY_TOOLS_ALLOW``.
Only the operator configures servers and tools: nothing a user sends can add one. Every field is
documented in docs/tools.md.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, ClassVar, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_settings import NoDecode

from gateway.shared.config import PatchbaySettings, comma_separated

__all__ = ["BUILTIN_TOOLS", "AllowRule", "McpServerConfig", "ToolsSettings", "expand_env"]

BuiltinName = Literal["current_time", "search_memory", "forget_memory"]
BUILTIN_TOOLS: tuple[str, ...] = ("current_time", "search_memory", "forget_memory")

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: str) -> str:
    """``"Bearer ${TOKEN}"`` with ``TOKEN`` read from the environment now (unset: empty), at connect time."""
    return _VAR.sub(lambda match: os.environ.get(match.group(1), ""), value)


class McpServerConfig(BaseModel):
    """One MCP server: a program run over stdio (``command``) or a streamable HTTP endpoint (``url``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$", description="prefixes its tools: <name>.<tool>")
    command: list[str] | None = Field(default=None, min_length=1, description="program and arguments (stdio)")
    url: str | None = Field(default=None, description="streamable HTTP endpoint, e.g. http://host:8000/mcp")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment of the stdio program")
    headers: dict[str, str] = Field(default_factory=dict, description="HTTP headers, e.g. Authorization")
    cacheable: list[str] = Field(
        default_factory=list, description="tools whose results may be cached (pure functions); default none"
    )

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError(f"MCP server {self.name!r} needs exactly one of command (stdio) or url (HTTP)")
        return self


class AllowRule(BaseModel):
    """Which tools a matching conversation may use; an unset field matches anything."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    platform: str | None = None
    conversation: str | None = Field(default=None, description="the platform's conversation (chat/channel) id")
    workspace: str | None = Field(default=None, description="Discord guild id or Slack team id")
    tools: list[str] = Field(default_factory=list, description="tool names or patterns: example.*, current_time")


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


_CommaList = Annotated[list[str], NoDecode, BeforeValidator(comma_separated)]  # "a, b" in the environment


class ToolsSettings(PatchbaySettings):
    TOML_SECTION: ClassVar[str] = "tools"

    mcp: list[McpServerConfig] = Field(default_factory=list, validation_alias=_alias("PATCHBAY_TOOLS_MCP", "mcp"))
    builtins: _CommaList = Field(
        default_factory=list,
        validation_alias=_alias("PATCHBAY_TOOLS_BUILTINS", "builtins"),
        description=f"built-in tools to offer: {', '.join(BUILTIN_TOOLS)}",
    )
    direct_messages: _CommaList = Field(
        default_factory=lambda: ["*"],
        validation_alias=_alias("PATCHBAY_TOOLS_DIRECT_MESSAGES", "direct_messages"),
        description="tools offered in direct messages (patterns); outside DMs only the allow rules give any",
    )
    allow: list[AllowRule] = Field(default_factory=list, validation_alias=_alias("PATCHBAY_TOOLS_ALLOW", "allow"))
    models: _CommaList = Field(
        default_factory=list,
        validation_alias=_alias("PATCHBAY_TOOLS_MODELS", "models"),
        description="models (patterns) that can call tools beyond those litellm knows, e.g. openai/sim-model",
    )

    # ---- limits of the tool loop, per message
    max_steps: int = Field(default=4, ge=1, validation_alias=_alias("PATCHBAY_TOOLS_MAX_STEPS", "max_steps"))
    total_timeout_s: float = Field(
        default=30.0, gt=0, validation_alias=_alias("PATCHBAY_TOOLS_TOTAL_TIMEOUT", "total_timeout_s")
    )
    call_timeout_s: float = Field(
        default=10.0, gt=0, validation_alias=_alias("PATCHBAY_TOOLS_CALL_TIMEOUT", "call_timeout_s")
    )
    max_result_chars: int = Field(
        default=4000, ge=100, validation_alias=_alias("PATCHBAY_TOOLS_MAX_RESULT_CHARS", "max_result_chars")
    )

    # ---- MCP connections
    connect_timeout_s: float = Field(
        default=10.0, gt=0, validation_alias=_alias("PATCHBAY_TOOLS_CONNECT_TIMEOUT", "connect_timeout_s")
    )
    list_ttl_s: float = Field(default=300.0, ge=0, validation_alias=_alias("PATCHBAY_TOOLS_LIST_TTL", "list_ttl_s"))
    retry_after_s: float = Field(
        default=5.0,
        ge=0,
        validation_alias=_alias("PATCHBAY_TOOLS_RETRY_AFTER", "retry_after_s"),
        description="a server that failed is tried again after this long (no restart needed)",
    )
