"""What tool calling costs per message, against the same message answered without tools, in one run.

    python bench/tools.py [N]

The model is the LLM simulator (in a process of its own, no latency), reached through the shipped
litellm client; the tool is the test suite's example MCP server over stdio. Three variants of the
same N messages, each a ratio against the first:

- ``baseline``: the base client alone (what the `tools` patch's layer below answers);
- ``shipped default``: through the `tools` enhancement as it ships (no server, no built-in
  configured), so every request goes straight below: the ratio is its cost when unused;
- ``one MCP call``: a direct message whose model asks for one tool call: two model requests and one
  call over an open stdio session. Its first message (starting the server, the session and the tool
  list) is reported apart, as ``first message``.

Not a test: figures depend on the machine; compare the ratios, not the absolute numbers.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

from adapters.sim.llm import SimulatorProcess
from gateway.shared.envelope import Envelope, Platform
from patches.tools import ToolCallingLLM, ToolsConfig
from workers.components import LLM, LLMRequest
from workers.llm.client import LiteLLMClient
from workers.tools.settings import McpServerConfig, ToolsSettings

MODEL = "openai/sim-model"
SERVER = Path(__file__).resolve().parents[1] / "tests" / "tools" / "mcp_example_server.py"


def _request(index: int) -> LLMRequest:
    envelope = Envelope(
        platform=Platform.WEBCHAT, bot_id="bench", conversation_id="c", message_id=f"m{index}", author_id="u",
        is_direct=True, text="checksum",
    )  # fmt: skip
    return LLMRequest(
        messages=[{"role": "user", "content": f"the checksum of message {index}"}],
        user_id=envelope.user_key,
        metadata={"envelope": envelope},
        use_cache=False,
    )


async def _timed_ms(llm: LLM, index: int) -> float:
    started = time.perf_counter()
    await llm.complete(_request(index))
    return (time.perf_counter() - started) * 1000


async def main(count: int) -> None:
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench")
    sim = SimulatorProcess()
    try:
        base = LiteLLMClient(MODEL, api_base=sim.base_url)
        await base.complete(_request(-1))  # litellm's import and first connection are nobody's cost here
        shipped = ToolCallingLLM(base, ToolsConfig(enabled=True), ToolsSettings(), model=MODEL)
        server = McpServerConfig(name="example", command=[sys.executable, str(SERVER)])
        with_tool = ToolCallingLLM(
            base, ToolsConfig(enabled=True), ToolsSettings(mcp=[server], models=[MODEL]), model=MODEL
        )
        sim.configure(tool_script=[{"tool": "example__checksum", "arguments": {"text": "bench"}}])
        first_ms = await _timed_ms(with_tool, -2)
        # Interleaved, message by message, so a busy machine slows every variant alike. The script only
        # names a tool the request offers: the baseline and the default offer none and get text.
        times: dict[str, list[float]] = {"baseline": [], "default": [], "tool": []}
        for index in range(count):
            times["baseline"].append(await _timed_ms(base, index))
            times["default"].append(await _timed_ms(shipped, index))
            times["tool"].append(await _timed_ms(with_tool, index))
        baseline, default, tooled = (statistics.median(times[name]) for name in ("baseline", "default", "tool"))
        await with_tool.aclose()
        await base.aclose()
    finally:
        sim.stop()
    print(f"tool calling, median of {count} messages each (the LLM simulator, the example MCP server over stdio)")
    print(f"  baseline (base client)         {baseline:8.2f} ms   1.00x")
    print(f"  shipped default (no tools)     {default:8.2f} ms   {default / baseline:.2f}x")
    print(f"  one MCP call (2 model requests){tooled:8.2f} ms   {tooled / baseline:.2f}x")
    print(f"  first message (server start)   {first_ms:8.2f} ms   {first_ms / baseline:.2f}x")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50))
