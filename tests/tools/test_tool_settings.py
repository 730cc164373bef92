"""``[tools]`` settings: MCP servers from patchbay.toml or PATCHBAY_TOOLS_MCP (the environment wins), ${VAR}s."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.shared.envelope import Envelope, Platform
from workers.components import LLMRequest
from workers.tools.settings import McpServerConfig, ToolsSettings, expand_env
from workers.tools.toolbox import context_of

TOML = """
[tools]
builtins = ["current_time"]
max_steps = 2

[[tools.mcp]]
name = "files"
command = ["python", "server.py"]
env = { TOKEN = "${FILES_TOKEN}" }

[[tools.mcp]]
name = "github"
url = "https://example.invalid/mcp"
headers = { Authorization = "Bearer ${GITHUB_TOKEN}" }
"""


def test_servers_come_from_the_file_and_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "patchbay.toml"
    config.write_text(TOML)
    monkeypatch.setenv("PATCHBAY_CONFIG", str(config))
    settings = ToolsSettings()
    assert [server.name for server in settings.mcp] == ["files", "github"]
    assert settings.mcp[0].command == ["python", "server.py"] and settings.mcp[1].url is not None
    assert settings.builtins == ["current_time"] and settings.max_steps == 2

    monkeypatch.setenv("PATCHBAY_TOOLS_MCP", json.dumps([{"name": "only", "url": "http://127.0.0.1:1/mcp"}]))
    monkeypatch.setenv("PATCHBAY_TOOLS_BUILTINS", "current_time, search_memory")
    settings = ToolsSettings()
    assert [server.name for server in settings.mcp] == ["only"]
    assert settings.builtins == ["current_time", "search_memory"]


def test_a_server_needs_exactly_one_transport_and_a_plain_name() -> None:
    with pytest.raises(ValidationError):
        McpServerConfig(name="both", command=["x"], url="http://h/mcp")
    with pytest.raises(ValidationError):
        McpServerConfig(name="neither")
    with pytest.raises(ValidationError):
        McpServerConfig(name="has space", url="http://h/mcp")


def test_variables_are_read_from_the_environment_at_connect_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_one")
    assert expand_env("Bearer ${GITHUB_TOKEN}") == "Bearer ghp_one"
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_two")  # rotated: the next connection uses the new one
    assert expand_env("Bearer ${GITHUB_TOKEN}") == "Bearer ghp_two"
    monkeypatch.delenv("GITHUB_TOKEN")
    assert expand_env("${GITHUB_TOKEN}") == "" and expand_env("$HOME stays") == "$HOME stays"


def test_the_context_of_a_message_names_its_place_and_time_zone() -> None:
    envelope = Envelope(
        platform=Platform.DISCORD,
        bot_id="b",
        conversation_id="chan",
        message_id="m",
        author_id="7",
        text="hi",
        hints={"guild_id": "g1", "timezone": "Europe/Paris"},
    )
    context = context_of(LLMRequest(messages=[], metadata={"envelope": envelope}))
    assert (context.platform, context.workspace, context.conversation_id) == ("discord", "g1", "chan")
    assert context.timezone == "Europe/Paris" and not context.is_direct and context.user_key == envelope.user_key
