"""MCP servers as tool sources, through the official ``mcp`` SDK (stdio and streamable HTTP).

One ``McpServer`` per configured server and worker process:

- **lazy**: nothing is started or connected until a message first needs the server's tools;
- **one session, reused**: the SDK's transports are anyio context managers that must be entered and
  left in one task, so a small owner task holds the session open until it is closed or breaks;
  every message's calls go through that one session;
- **the tool list is cached** for ``list_ttl_s``; a failed call drops it, so a server that went
  away stops being offered with the next message;
- **down is not an error of the reply**: a server that cannot be reached (or listed) raises
  ``ServerUnavailable``, counted (``patchbay_tools_server_unavailable_total{server,reason}``) and
  logged once per outage; its tools are simply not offered. Only the very first connection is
  waited for (up to ``connect_timeout_s``); once a server is known to be down no message waits for
  it: after ``retry_after_s`` a message starts one attempt in the background, and the messages after
  it succeeds use the server again, without a restart.

``${VAR}`` in ``env`` and ``headers`` values is read from the environment at connect time, so a
rotated token needs a reconnect, not a new configuration. A stdio program gets the SDK's minimal
default environment (PATH, HOME...) plus its ``env``: the worker's secrets are not handed to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

from workers.tools.base import ToolContext, ToolError, ToolSpec
from workers.tools.metrics import SERVER_UNAVAILABLE
from workers.tools.settings import McpServerConfig, ToolsSettings, expand_env

__all__ = ["McpServer", "ServerUnavailable"]

log = logging.getLogger(__name__)


class ServerUnavailable(RuntimeError):
    """The server cannot be used now; ``reason`` is short and safe to log (no header values)."""

    def __init__(self, server: str, reason: str) -> None:
        super().__init__(f"MCP server {server} unavailable: {reason}")
        self.reason = reason


def _describe(exc: BaseException) -> str:
    # anyio wraps transport failures in exception groups: the first leaf says what happened.
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class McpServer:
    def __init__(self, config: McpServerConfig, settings: ToolsSettings) -> None:
        self.config = config
        self.name = config.name
        self.settings = settings
        self._session: Any = None
        self._owner: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._lock = asyncio.Lock()
        self._tools: list[ToolSpec] | None = None
        self._listed_at = 0.0
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._down_reason = ""
        self._retry: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ the interface of a tool source

    async def list_tools(self) -> list[ToolSpec]:
        if self._fresh():
            assert self._tools is not None
            return self._tools
        if self._down_since is not None:
            # Known to be down: no message waits for it. Once retry_after_s has passed, one attempt
            # runs in the background, and the messages after it succeeds get the tools again.
            if time.monotonic() >= self._retry_at and (self._retry is None or self._retry.done()):
                self._retry = asyncio.create_task(self._retry_quietly(), name=f"mcp-retry-{self.name}")
            raise ServerUnavailable(self.name, self._down_reason)
        return await self._refresh()

    def _fresh(self) -> bool:
        return (
            self._tools is not None
            and self._session is not None
            and time.monotonic() - self._listed_at < self.settings.list_ttl_s
        )

    async def _refresh(self) -> list[ToolSpec]:
        """Connect if needed and list the tools; the first connection is waited for (bounded), retries are not."""
        async with self._lock:
            if self._fresh():
                assert self._tools is not None
                return self._tools
            try:
                session = await self._connected()
                listed = await asyncio.wait_for(session.list_tools(), self.settings.connect_timeout_s)
            except Exception as exc:
                await self._went_down("list_failed" if self._session is not None else "connect_failed", exc)
                raise ServerUnavailable(self.name, self._down_reason) from exc
            self._tools = [self._spec(tool) for tool in listed.tools]
            self._listed_at = time.monotonic()
            if self._down_since is not None:
                down_for = time.monotonic() - self._down_since
                log.info("MCP server %s is back after %.0fs: %d tools", self.name, down_for, len(self._tools))
                self._down_since = None
            return self._tools

    async def _retry_quietly(self) -> None:
        with contextlib.suppress(Exception):  # a failure was counted and logged by _went_down
            await self._refresh()

    async def call(self, tool: str, arguments: dict[str, Any], context: ToolContext) -> str:
        session, owner = self._session, self._owner
        if session is None or owner is None:
            raise ServerUnavailable(self.name, self._down_reason or "not connected")
        pending = asyncio.ensure_future(
            session.call_tool(tool, arguments, read_timeout_seconds=timedelta(seconds=self.settings.call_timeout_s))
        )
        try:
            # The session's end (the program exited, the endpoint went away) ends the wait at once,
            # rather than after the read timeout.
            await asyncio.wait({pending, owner}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not pending.done():
                pending.cancel()
        if not pending.done() or pending.cancelled():
            error = ServerUnavailable(self.name, "the session ended during the call")
            await self._went_down("call_failed", error)
            raise error
        try:
            result = pending.result()
        except TimeoutError:
            raise  # a slow tool is the loop's to report; the session itself may well be fine
        except Exception as exc:
            # The transport broke: reconnect next time.
            await self._went_down("call_failed", exc)
            raise
        text = _result_text(result)
        if getattr(result, "isError", False):
            raise ToolError(text or "the tool reported an error")
        return text

    # ------------------------------------------------------------------ the session

    async def _connected(self) -> Any:
        if self._session is not None and self._owner is not None and not self._owner.done():
            return self._session
        await self._close_session()
        ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._owner = asyncio.create_task(self._hold_session(ready, self._stop), name=f"mcp-{self.name}")
        try:
            self._session = await asyncio.wait_for(asyncio.shield(ready), self.settings.connect_timeout_s)
        except BaseException:
            await self._close_session()
            raise
        return self._session

    async def _hold_session(self, ready: asyncio.Future[Any], stop: asyncio.Event) -> None:
        from mcp import ClientSession

        try:
            async with AsyncExitStack() as stack:
                read, write = await self._open_transport(stack)
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                ready.set_result(session)
                await stop.wait()
        except BaseException as exc:  # the owner task ends with the session: record why, never raise
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError(_describe(exc)))
            elif not stop.is_set():
                log.warning("MCP server %s: the session ended: %s", self.name, _describe(exc))
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            if self._owner is asyncio.current_task():
                self._session = None
                self._tools = None

    async def _open_transport(self, stack: AsyncExitStack) -> tuple[Any, Any]:
        if self.config.command is not None:
            from mcp import StdioServerParameters
            from mcp.client.stdio import stdio_client

            command, *args = self.config.command
            env = {key: expand_env(value) for key, value in self.config.env.items()}
            params = StdioServerParameters(command=command, args=args, env=env or None)
            read, write = await stack.enter_async_context(stdio_client(params))
            return read, write
        import httpx
        from mcp.client.streamable_http import streamable_http_client

        assert self.config.url is not None
        headers = {key: expand_env(value) for key, value in self.config.headers.items()}
        timeout = httpx.Timeout(self.settings.call_timeout_s + 5, connect=self.settings.connect_timeout_s)
        client = await stack.enter_async_context(httpx.AsyncClient(headers=headers, timeout=timeout))
        read, write, _ = await stack.enter_async_context(
            streamable_http_client(expand_env(self.config.url), http_client=client)
        )
        return read, write

    async def _went_down(self, reason: str, exc: BaseException) -> None:
        SERVER_UNAVAILABLE.labels(server=self.name, reason=reason).inc()
        self._down_reason = f"{reason}: {_describe(exc)}"
        self._retry_at = time.monotonic() + self.settings.retry_after_s
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning(
                "MCP server %s unavailable (%s); its tools are not offered, retrying in %.1fs",
                self.name,
                self._down_reason,
                self.settings.retry_after_s,
            )
        await self._close_session()

    async def _close_session(self) -> None:
        owner, stop = self._owner, self._stop
        self._owner, self._stop, self._session, self._tools = None, None, None, None
        if owner is None:
            return
        if stop is not None:
            stop.set()
        try:
            await asyncio.wait_for(owner, 5.0)
        except BaseException:  # a transport that will not close is cancelled; nothing is left to do with it
            owner.cancel()

    async def aclose(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
        await self._close_session()

    # ------------------------------------------------------------------ translation

    def _spec(self, tool: Any) -> ToolSpec:
        schema = dict(getattr(tool, "inputSchema", None) or {"type": "object", "properties": {}})
        return ToolSpec(
            server=self.name,
            tool=str(tool.name),
            description=str(getattr(tool, "description", None) or tool.name),
            parameters=schema,
            cacheable=tool.name in self.config.cacheable,
        )


def _result_text(result: Any) -> str:
    parts: list[str] = []
    for block in getattr(result, "content", None) or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(str(block.text))
        else:
            parts.append(f"[{kind} content]")  # images and resources are not passed to the model as text
    structured = getattr(result, "structuredContent", None)
    if not parts and structured is not None:
        parts.append(json.dumps(structured, ensure_ascii=False))
    return "\n".join(parts)
