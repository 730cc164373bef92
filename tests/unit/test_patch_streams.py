"""Guarded async-iterator methods: fall back before the first chunk, end honestly after it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import pytest

from patches.conformance import check_conformance
from patches.context import call_context
from patches.runtime import PatchRuntime
from patches.spec import PatchSpec
from patches.switches import Switch
from tests.unit.test_patch_toys import ToyConfig, layer_over

NOTE = " [cut short]"


class Streamer(Protocol):
    async def stream(self, prompt: str) -> AsyncIterator[str]:
        raise NotImplementedError
        yield ""  # an async generator: the framework guards it as a stream


class WordStreamer:
    """The base: the prompt's words one by one; it can wait before each, or break after ``fail_after``."""

    def __init__(self, delay_s: float = 0.0, fail_after: int | None = None) -> None:
        self.delay_s, self.fail_after = delay_s, fail_after
        self.opened = 0
        self.closed = 0

    async def stream(self, prompt: str) -> AsyncIterator[str]:
        self.opened += 1
        try:
            for index, word in enumerate(prompt.split()):
                if self.fail_after is not None and index == self.fail_after:
                    raise ConnectionError("the model went away mid-answer")
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                yield word
        finally:
            self.closed += 1


class Upper:
    """Upper-cases the layer below's stream; ``mode`` makes it fail at chosen points."""

    def __init__(self, below: Streamer, mode: str) -> None:
        self.below, self.mode = below, mode

    async def stream(self, prompt: str) -> AsyncIterator[str]:
        if self.mode == "hang":
            await asyncio.Event().wait()
        chunks = self.below.stream(prompt)
        async for chunk in chunks:
            if self.mode == "before-first":
                raise RuntimeError("broke before saying anything")
            yield chunk.upper()
            if self.mode == "after-first":
                raise RuntimeError("broke mid-answer")


def spec(mode: str) -> PatchSpec:
    def factory(below: Any, config: Any, deps: Mapping[str, Any]) -> Upper:
        return Upper(below, mode)

    return PatchSpec(
        name="upper",
        kind="streamer",
        interface=Streamer,
        config_cls=ToyConfig,
        factory=factory,
        enhances=("stream",),
        stream_note=NOTE,
    )


async def collect(layer: Any, prompt: str = "one two three") -> tuple[list[str], list[str]]:
    with call_context(user_id="u1") as context:
        chunks = [chunk async for chunk in layer.stream(prompt)]
    return chunks, [entry.outcome for entry in context.trace]


def guarded(mode: str, base: WordStreamer, runtime: PatchRuntime, **config: Any) -> Any:
    return layer_over(spec(mode), ToyConfig(enabled=True, **config), base, runtime)


async def test_an_applied_stream_is_the_enhancements() -> None:
    runtime, base = PatchRuntime(), WordStreamer()
    assert await collect(guarded("ok", base, runtime)) == (["ONE", "TWO", "THREE"], ["applied"])
    assert (base.opened, base.closed) == (1, 1)


async def test_a_failure_before_the_first_chunk_falls_back_to_the_stream_below_opened_once() -> None:
    runtime, base = PatchRuntime(), WordStreamer()
    chunks, outcomes = await collect(guarded("before-first", base, runtime))
    assert (chunks, outcomes) == (["one", "two", "three"], ["fallback"])
    assert base.opened == 1  # what the enhancement had drawn was replayed, the rest read on
    assert base.closed == 1
    stats = runtime.stats.patches["upper"]
    assert (stats.errors_by_reason["exception"], stats.fallbacks_by_reason["exception"]) == (1, 1)


async def test_a_failure_after_the_first_chunk_ends_the_stream_with_the_note(caplog: pytest.LogCaptureFixture) -> None:
    runtime, base = PatchRuntime(), WordStreamer()
    with caplog.at_level(logging.WARNING, logger="patches.layer"):
        chunks, outcomes = await collect(guarded("after-first", base, runtime))
    assert (chunks, outcomes) == (["ONE", NOTE], ["failed_mid_stream"])  # what was said, then an honest note
    assert base.opened == 1 and base.closed == 1  # the stream below was closed, not left hanging
    stats = runtime.stats.patches["upper"]
    assert (stats.errors_by_reason["failed_mid_stream"], stats.fallbacks) == (1, 0)
    assert any("failed_mid_stream" in r.getMessage() and "patch=upper" in r.getMessage() for r in caplog.records)
    health = runtime.health.get("upper")
    assert health is not None and health.snapshot().failures == 1


async def test_an_enhancement_that_hangs_before_its_first_chunk_falls_back_within_its_budget() -> None:
    runtime, base = PatchRuntime(), WordStreamer()
    started = time.monotonic()
    chunks, outcomes = await collect(guarded("hang", base, runtime, timeout_s=0.1))
    assert (chunks, outcomes) == (["one", "two", "three"], ["fallback"])
    assert time.monotonic() - started < 0.1 + 0.3
    assert runtime.stats.patches["upper"].errors_by_reason["timeout"] == 1


async def test_a_slow_stream_below_does_not_count_against_the_time_to_first_chunk() -> None:
    runtime, base = PatchRuntime(), WordStreamer(delay_s=0.3)
    assert await collect(guarded("ok", base, runtime, timeout_s=0.1)) == (["ONE", "TWO", "THREE"], ["applied"])


async def test_the_stream_below_breaking_propagates_and_is_charged_to_below() -> None:
    runtime, base = PatchRuntime(), WordStreamer(fail_after=2)
    received: list[str] = []
    with call_context(user_id="u1") as context, pytest.raises(ConnectionError):
        async for chunk in guarded("ok", base, runtime).stream("one two three"):
            received.append(chunk)
    assert received == ["ONE", "TWO"]
    assert [entry.outcome for entry in context.trace] == ["below_failed"]
    stats = runtime.stats.patches["upper"]
    assert (stats.errors, stats.below_failed) == (0, 1)
    assert base.opened == 1


async def test_a_skipped_stream_is_the_stream_below_itself() -> None:
    runtime, base = PatchRuntime(), WordStreamer()
    layer = guarded("ok", base, runtime)
    runtime.switches.table = {"upper": Switch(enabled=False)}
    assert await collect(layer) == (["one", "two", "three"], ["skipped"])


async def test_a_consumer_that_stops_early_closes_both_streams() -> None:
    runtime, base = PatchRuntime(), WordStreamer()
    stream = guarded("ok", base, runtime).stream("one two three")
    assert await stream.__anext__() == "ONE"
    await stream.aclose()
    assert base.closed == 1
    assert runtime.stats.patches["upper"].errors == 0


async def test_stream_methods_are_checked_before_wrapping() -> None:
    class Coroutine:  # awaits one result where the interface streams
        async def stream(self, prompt: str) -> list[str]:
            return [prompt]

    runtime, base = PatchRuntime(), WordStreamer()
    assert check_conformance(guarded("ok", base, runtime), Streamer) == []
    problems = check_conformance(Coroutine(), Streamer)
    assert problems and "async iterator" in problems[0]
    refused = PatchSpec(
        name="coroutine",
        kind="streamer",
        interface=Streamer,
        config_cls=ToyConfig,
        factory=lambda below, config, deps: Coroutine(),
        enhances=("stream",),
    )
    assert await runtime.apply(refused, base, ToyConfig(enabled=True)) is base
    assert "async iterator" in runtime.refusals["coroutine"].reason
