"""The test suite's example MCP server, written with the SDK's server side (``FastMCP``).

    python tests/tools/mcp_example_server.py                 # over stdio (what ``command`` runs)
    python tests/tools/mcp_example_server.py --http 8765     # streamable HTTP on http://127.0.0.1:8765/mcp

Its tools are deterministic, so a test (or a reader of docs/tools.md) can predict every answer:
``checksum`` (a distinctive string derived from its text), ``add``, ``sleep`` (to test the loop's
time limit with a tool that hangs) and ``fail`` (a tool that raises). It imports nothing of
Patchbay: it is what any third-party server is to the workers.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging

from mcp.server.fastmcp import FastMCP

server = FastMCP("patchbay-example")


@server.tool()
def checksum(text: str) -> str:
    """The checksum of a text: a short code that only this tool can compute."""
    return f"checksum of {text!r} is {hashlib.sha256(text.encode()).hexdigest()[:8]}"


@server.tool()
def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


@server.tool()
async def sleep(seconds: float) -> str:
    """Wait this many seconds, then say so."""
    await asyncio.sleep(seconds)
    return f"slept {seconds} s"


@server.tool()
def fail(message: str = "it broke") -> str:
    """Always fails, with this message."""
    raise ValueError(message)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP on this port (else stdio)")
    args = parser.parse_args()
    # Its stderr is the worker's log over stdio: one INFO line per request would drown it.
    logging.getLogger("mcp").setLevel(logging.WARNING)
    server.settings.log_level = "WARNING"
    if args.http is None:
        server.run("stdio")
        return
    server.settings.host = "127.0.0.1"
    server.settings.port = args.http
    server.run("streamable-http")


if __name__ == "__main__":
    main()
