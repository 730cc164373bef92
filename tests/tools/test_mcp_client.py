"""The MCP client against the example server, as a real subprocess: stdio, and HTTP going down and up."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from pathlib import Path

import pytest

from workers.tools.base import ToolContext, ToolError
from workers.tools.mcp import McpServer, ServerUnavailable
from workers.tools.settings import McpServerConfig, ToolsSettings

SERVER = Path(__file__).resolve().parent / "mcp_example_server.py"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_stdio_lists_calls_and_reports_tool_errors_over_one_reused_session() -> None:
    server = McpServer(McpServerConfig(name="example", command=[sys.executable, str(SERVER)]), ToolsSettings())
    try:
        tools = await server.list_tools()
        assert [tool.name for tool in tools] == ["example.checksum", "example.add", "example.sleep", "example.fail"]
        assert tools[0].wire_name == "example__checksum" and "text" in tools[0].parameters["properties"]
        session = server._session
        assert (
            await server.call("checksum", {"text": "patchbay"}, ToolContext()) == "checksum of 'patchbay' is e22db1b9"
        )
        assert await server.call("add", {"a": 2, "b": 3}, ToolContext()) == "5"
        with pytest.raises(ToolError, match="boom"):
            await server.call("fail", {"message": "boom"}, ToolContext())
        assert await server.list_tools() == tools and server._session is session  # cached, and one session
    finally:
        await server.aclose()


async def test_a_server_known_to_be_down_is_not_waited_for_and_comes_back_in_the_background() -> None:
    port = _free_port()
    settings = ToolsSettings(retry_after_s=0.2, connect_timeout_s=5)
    server = McpServer(McpServerConfig(name="web", url=f"http://127.0.0.1:{port}/mcp"), settings)
    process: asyncio.subprocess.Process | None = None
    try:
        with pytest.raises(ServerUnavailable, match="connect_failed"):
            await server.list_tools()  # the first connection is waited for, and fails
        started = time.monotonic()
        with pytest.raises(ServerUnavailable):
            await server.list_tools()  # known to be down: refused at once
        assert time.monotonic() - started < 0.05

        process = await asyncio.create_subprocess_exec(sys.executable, str(SERVER), "--http", str(port))
        deadline = time.monotonic() + 30
        tools = None
        while tools is None and time.monotonic() < deadline:
            try:
                tools = await server.list_tools()
            except ServerUnavailable:
                await asyncio.sleep(0.25)  # each refused call past retry_after_s starts one background attempt
        assert tools is not None and "web.add" in [tool.name for tool in tools]
        assert await server.call("add", {"a": 40, "b": 2}, ToolContext()) == "42"

        process.kill()
        await process.wait()
        with pytest.raises(Exception):  # noqa: B017 - the session ended during the call, or the call broke
            await server.call("add", {"a": 1, "b": 1}, ToolContext())
        with pytest.raises(ServerUnavailable):
            await server.list_tools()
    finally:
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
        await server.aclose()
