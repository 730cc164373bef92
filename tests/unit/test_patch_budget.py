"""A patch's time budget covers its own work only: time spent waiting on the layer below does not count."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from patches.context import call_context
from patches.runtime import PatchRuntime
from tests.unit.test_patch_toys import ToyConfig, ToyLLM, layer_over, llm_spec, request
from workers.components import LLM, LLMRequest, LLMResult


class SlowLLM(ToyLLM):
    """A base that takes ``delay_s`` to answer (a remote model, the offline one)."""

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.delay_s = delay_s

    async def complete(self, request: LLMRequest) -> LLMResult:
        await asyncio.sleep(self.delay_s)
        return await super().complete(request)


class OwnWork:
    """Waits ``before_s`` on its own, calls below (``parallel`` times at once), then waits ``after_s``."""

    def __init__(self, below: LLM, before_s: float, after_s: float, parallel: int = 1) -> None:
        self.below, self.before_s, self.after_s, self.parallel = below, before_s, after_s, parallel

    async def complete(self, request: LLMRequest) -> LLMResult:
        if self.before_s:
            await asyncio.sleep(self.before_s)
        if self.parallel == 1:
            results = [await self.below.complete(request)]
        else:
            results = await asyncio.gather(*(self.below.complete(request) for _ in range(self.parallel)))
        if self.after_s:
            await asyncio.sleep(self.after_s)
        return LLMResult(text=f"own({results[0].text})", model="toy")


def budgeted(base: Any, runtime: PatchRuntime, *, before_s: float, after_s: float, parallel: int = 1) -> LLM:
    spec = llm_spec("budgeted", factory=lambda below, config, deps: OwnWork(below, before_s, after_s, parallel))
    layer: LLM = layer_over(spec, ToyConfig(enabled=True, timeout_s=0.2), base, runtime)
    return layer


async def timed(layer: LLM) -> tuple[str, str, float]:
    started = time.monotonic()
    with call_context(user_id="u1") as context:
        result = await layer.complete(request("x"))
    [entry] = context.trace
    return result.text, entry.outcome, time.monotonic() - started


async def test_a_slow_layer_below_does_not_count_against_the_budget() -> None:
    runtime = PatchRuntime()
    base = SlowLLM(1.0)
    text, outcome, elapsed = await timed(budgeted(base, runtime, before_s=0.0, after_s=0.0))
    assert (text, outcome) == ("own(base: x)", "applied")  # 1 s below, a 0.2 s budget: not timed out
    assert elapsed >= 1.0
    assert runtime.stats.patches["budgeted"].errors == 0
    assert base.calls == 1


async def test_own_work_before_and_after_the_call_below_shares_one_budget() -> None:
    runtime = PatchRuntime()
    within = SlowLLM(0.5)
    text, outcome, _ = await timed(budgeted(within, runtime, before_s=0.08, after_s=0.05))
    assert (text, outcome) == ("own(base: x)", "applied")  # 0.13 s of its own, however long below took

    beyond = SlowLLM(0.5)
    text, outcome, elapsed = await timed(budgeted(beyond, runtime, before_s=0.12, after_s=5.0))
    # 0.12 s before, then the deadline stood still for 0.5 s below, then the remaining 0.08 s ran out.
    assert (text, outcome) == ("base: x", "fallback")
    assert beyond.calls == 1  # the fallback reused the answer below had already given
    assert 0.5 + 0.2 <= elapsed < 0.5 + 0.2 + 0.5
    assert runtime.stats.patches["budgeted"].errors_by_reason["timeout"] == 1


async def test_calls_below_in_parallel_stop_the_clock_once() -> None:
    runtime = PatchRuntime()
    base = SlowLLM(0.4)
    text, outcome, _ = await timed(budgeted(base, runtime, before_s=0.0, after_s=0.0, parallel=3))
    assert (text, outcome) == ("own(base: x)", "applied")
    assert base.calls == 3


async def test_an_enhancement_whose_own_work_hangs_falls_back_within_its_budget() -> None:
    runtime = PatchRuntime()
    base = ToyLLM()
    text, outcome, elapsed = await timed(budgeted(base, runtime, before_s=30.0, after_s=0.0))
    assert (text, outcome) == ("base: x", "fallback")
    assert elapsed < 0.2 + 0.3  # the budget, plus the scheduling slack of a shared machine
    assert base.calls == 1
    assert runtime.stats.patches["budgeted"].errors_by_reason["timeout"] == 1


async def test_an_outside_cancellation_is_not_a_timeout() -> None:
    runtime = PatchRuntime()
    layer = budgeted(ToyLLM(), runtime, before_s=30.0, after_s=0.0)
    task = asyncio.create_task(layer.complete(request("x")))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stats = runtime.stats.patches["budgeted"]
    assert (stats.errors, stats.fallbacks) == (0, 0)


async def test_an_answer_without_any_wait_needs_no_timer() -> None:
    runtime = PatchRuntime()
    layer = budgeted(ToyLLM(), runtime, before_s=0.0, after_s=0.0)
    loop = asyncio.get_running_loop()
    scheduled_before = len(loop._scheduled)  # type: ignore[attr-defined]
    assert (await layer.complete(request("x"))).text == "own(base: x)"
    assert len(loop._scheduled) == scheduled_before  # type: ignore[attr-defined]
