"""What litellm costs per call, against a plain HTTP call to the same OpenAI-compatible simulator.

Both clients call the instant LLM simulator (in a process of its own) with the same request, one
call at a time and then 50 in flight; the figure is this process's CPU per call (``time.process_time``),
since the simulator's time is not the client's. The plain call is one pooled ``httpx.AsyncClient``
POST of the request and a JSON parse of the answer: what Patchbay reads from a completion (text,
finish reason, token counts) is in that JSON.

    python bench/litellm_overhead.py [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.sim.llm import SimulatorProcess
from workers.llm.litellm_loader import load_litellm

MESSAGES = [
    {"role": "system", "content": "You are Patchbay, a friendly and concise assistant."},
    {"role": "user", "content": "message 1 about my dog"},
    {"role": "assistant", "content": "Dogs are great."},
    {"role": "user", "content": "what did I say about my dog?"},
]


async def cpu_per_call(call: Callable[[], Awaitable[object]], calls: int, parallel: int) -> float:
    for _ in range(3):  # warm: first-call imports, connection pools
        await call()
    semaphore = asyncio.Semaphore(parallel)

    async def one() -> None:
        async with semaphore:
            await call()

    started = time.process_time()
    await asyncio.gather(*(one() for _ in range(calls)))
    return (time.process_time() - started) / calls * 1e6


async def run(calls: int) -> None:
    simulator = SimulatorProcess()
    litellm = load_litellm()
    try:
        async with httpx.AsyncClient(base_url=simulator.base_url, timeout=30) as client:

            async def plain() -> object:
                response = await client.post(
                    "/chat/completions",
                    json={"model": "sim-model", "messages": MESSAGES, "max_tokens": 200, "temperature": 0.7},
                    headers={"Authorization": "Bearer sk-bench"},
                )
                response.raise_for_status()
                body = response.json()
                return body["choices"][0]["message"]["content"], body.get("usage")

            async def through_litellm() -> object:
                response = await litellm.acompletion(
                    model="openai/sim-model", messages=MESSAGES, max_tokens=200, temperature=0.7,
                    api_base=simulator.base_url, api_key="sk-bench", num_retries=0, max_retries=0, timeout=30,
                )  # fmt: skip
                return response.choices[0].message.content

            print(f"{'client (CPU of this process per call)':44} {'1 in flight':>12} {'50 in flight':>13}")
            figures = {}
            for name, call in (("plain httpx POST (baseline)", plain), ("litellm.acompletion", through_litellm)):
                figures[name] = [await cpu_per_call(call, calls, p) for p in (1, 50)]
                one, fifty = figures[name]
                print(f"{name:44} {one:9.0f} µs {fifty:10.0f} µs")
            base = figures["plain httpx POST (baseline)"]
            lite = figures["litellm.acompletion"]
            print(f"{'litellm / plain':44} {lite[0] / base[0]:11.1f}x {lite[1] / base[1]:12.1f}x")
    finally:
        simulator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    asyncio.run(run(args.calls))


if __name__ == "__main__":
    main()
