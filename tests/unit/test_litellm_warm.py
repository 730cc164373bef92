"""A warm worker has paid litellm's first-use imports: its first messages do not stall the process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

_PROBE = textwrap.dedent(
    """
    import asyncio, sys
    from adapters.sim.llm import LLMSimulator
    from workers.llm.litellm_loader import load_litellm, warm_litellm

    async def main():
        litellm = load_litellm()
        if sys.argv[1] == "warm":
            await warm_litellm()
        async with LLMSimulator(port=0) as sim:
            before = set(sys.modules)
            ask = dict(model="openai/x", api_base=sim.base_url, api_key="k", messages=[{"role": "user", "content": "hi"}])
            await litellm.acompletion(**ask)
            chunks = [c async for c in await litellm.acompletion(**ask, stream=True)]
            litellm.stream_chunk_builder(chunks, messages=ask["messages"])
            print(len(set(sys.modules) - before))

    asyncio.run(main())
    """
)


def _modules_loaded_by_first_calls(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, timeout=240, check=True)
    return int(done.stdout.strip().splitlines()[-1])


def test_the_first_real_calls_after_the_warm_up_load_almost_nothing() -> None:
    cold, warm = _modules_loaded_by_first_calls("cold"), _modules_loaded_by_first_calls("warm")
    assert cold > 20, cold  # what the warm-up is for: litellm's lazy imports on first use
    assert warm <= 5, warm
