"""The guarded layer at call time: fallbacks are counted, logged and traced; the layer below's failures are its own."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from patches.conformance import check_conformance
from patches.context import call_context, current_trace
from patches.layer import PatchLayer, stack_of
from patches.metrics import ProcessPatchCollector
from patches.runtime import PatchRuntime
from patches.spec import PatchSpec
from patches.switches import Switch
from tests.unit.test_patch_toys import (
    Behaviour,
    BrokenLLM,
    ToyConfig,
    ToyLLM,
    ToyMemory,
    layer_over,
    llm_spec,
    request,
)
from workers.components import LLM, ComponentKind, Memory, Turn


def layered(behaviour: Behaviour, runtime: PatchRuntime, *, base: Any = None, **config: Any) -> LLM:
    layer: LLM = layer_over(
        llm_spec("toy", behaviour), ToyConfig(enabled=True, **config), base if base is not None else ToyLLM(), runtime
    )
    return layer


def prometheus(runtime: PatchRuntime) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(ProcessPatchCollector(runtime.stats))
    return registry


async def test_applied_call_returns_the_enhanced_result_and_traces_it() -> None:
    runtime = PatchRuntime()
    layer = layered(Behaviour(), runtime)
    with call_context(user_id="u1", conversation_key="c", platform="webchat") as context:
        result = await layer.complete(request("hello"))
    assert result.text == "toy(base: hello)"
    assert [(e.patch, e.method, e.outcome) for e in context.trace] == [("toy", "complete", "applied")]
    assert current_trace() == []  # the context is gone after the block
    registry = prometheus(runtime)
    assert registry.get_sample_value("patchbay_patch_calls_total", {"patch": "toy", "method": "complete"}) == 1
    assert registry.get_sample_value("patchbay_patch_latency_seconds_count", {"patch": "toy"}) == 1


@pytest.mark.parametrize(
    ("mode", "reason", "config"),
    [
        ("raise", "exception", {}),
        ("hang", "timeout", {"timeout_s": 0.01}),
        ("bad-result", "rejected", {}),
    ],
)
async def test_failing_enhancement_falls_back_counted_and_logged(
    mode: str, reason: str, config: dict[str, float], caplog: pytest.LogCaptureFixture
) -> None:
    runtime = PatchRuntime()
    base = ToyLLM()
    layer = layered(Behaviour(mode=mode), runtime, base=base, **config)
    with caplog.at_level(logging.WARNING, logger="patches.layer"), call_context(user_id="u1") as context:
        result = await layer.complete(request("hello"))

    assert result.text == "base: hello"  # the layer below answered
    assert base.calls == 1  # ...once: for "bad-result" the enhancement's own call below is reused
    stats = runtime.stats.patches["toy"]
    assert stats.errors_by_reason[reason] == 1
    assert stats.fallbacks_by_reason[reason] == 1
    assert (stats.calls, stats.below_failed) == (1, 0)
    registry = prometheus(runtime)
    assert registry.get_sample_value("patchbay_patch_errors_total", {"patch": "toy", "reason": reason}) == 1
    assert registry.get_sample_value("patchbay_patch_fallbacks_total", {"patch": "toy", "reason": reason}) == 1
    fallbacks = [r for r in caplog.records if r.getMessage().startswith("fallback patch=toy method=complete")]
    assert len(fallbacks) == 1 and f"reason={reason}" in fallbacks[0].getMessage()
    assert fallbacks[0].levelno == logging.WARNING
    [entry] = context.trace
    assert (entry.outcome, entry.reason.split(":")[0]) == ("fallback", reason)


async def test_the_base_exception_propagates_through_the_layer() -> None:
    runtime = PatchRuntime()
    base = BrokenLLM()
    layer = layered(Behaviour(mode="raise"), runtime, base=base)
    with pytest.raises(ConnectionError, match="base provider is down"):
        await layer.complete(request())
    stats = runtime.stats.patches["toy"]
    # The enhancement failed on its own first (counted); the fallback's one call below then failed too.
    assert (stats.errors, stats.fallbacks, stats.below_failed, base.calls) == (1, 0, 1, 1)


async def test_a_base_failure_inside_the_enhancement_still_reaches_the_caller() -> None:
    runtime = PatchRuntime()
    base = BrokenLLM()
    layer = layered(Behaviour(), runtime, base=base)
    with call_context(user_id="u1") as context, pytest.raises(ConnectionError):
        await layer.complete(request())  # the enhancement calls the base, which raises: propagated, once
    stats = runtime.stats.patches["toy"]
    assert base.calls == 1
    assert (stats.errors, stats.fallbacks, stats.below_failed) == (0, 0, 1)
    [entry] = context.trace
    assert (entry.outcome, entry.reason) == ("below_failed", "ConnectionError: the base provider is down")


async def test_a_base_that_always_raises_is_called_once_per_request_and_never_blamed_on_the_patch() -> None:
    runtime = PatchRuntime()
    base = BrokenLLM()
    layer = layered(Behaviour(), runtime, base=base, health_min_calls=5)
    for _ in range(25):
        with call_context(user_id="u1") as context, pytest.raises(ConnectionError):
            await layer.complete(request())
        assert [entry.outcome for entry in context.trace] == ["below_failed"]
    stats = runtime.stats.patches["toy"]
    assert base.calls == 25  # not 45: no second call for a fallback that cannot help
    assert (stats.calls, stats.errors, stats.fallbacks, stats.below_failed) == (25, 0, 0, 25)
    health = runtime.health.get("toy")
    assert health is not None and health.state == "ok"
    assert health.snapshot().failures == 0
    assert prometheus(runtime).get_sample_value("patchbay_patch_below_failed_total", {"patch": "toy"}) == 25


class Wrapping:
    """Catches the layer below's failure and raises its own, chained to it."""

    def __init__(self, below: LLM) -> None:
        self.below = below

    async def complete(self, request: Any) -> Any:
        try:
            return await self.below.complete(request)
        except ConnectionError as exc:
            raise RuntimeError("could not enhance") from exc


class SwallowingThenFailing:
    """Absorbs the layer below's failure, then fails on something of its own."""

    def __init__(self, below: LLM) -> None:
        self.below = below

    async def complete(self, request: Any) -> Any:
        try:
            await self.below.complete(request)
        except ConnectionError:
            pass
        raise KeyError("a bug of its own")


@pytest.mark.parametrize(("enhancement", "raised"), [(Wrapping, RuntimeError), (SwallowingThenFailing, KeyError)])
async def test_anything_raised_after_the_layer_below_failed_is_charged_to_below(
    enhancement: type, raised: type
) -> None:
    runtime = PatchRuntime()
    base = BrokenLLM()
    spec = llm_spec("toy", factory=lambda below, config, deps: enhancement(below))
    layer = layer_over(spec, ToyConfig(enabled=True), base, runtime)
    with pytest.raises(raised):  # propagated unchanged
        await layer.complete(request())
    stats = runtime.stats.patches["toy"]
    assert base.calls == 1
    assert (stats.errors, stats.fallbacks, stats.below_failed) == (0, 0, 1)


class AnswersThenBreaks:
    """Gets the layer below's answer (for ``args`` of its own choice), then fails on its own."""

    def __init__(self, below: LLM, rewrite: bool) -> None:
        self.below, self.rewrite = below, rewrite

    async def complete(self, req: Any) -> Any:
        await self.below.complete(request("rewritten") if self.rewrite else req)
        raise ValueError("post-processing broke")


@pytest.mark.parametrize(("rewrite", "base_calls"), [(False, 1), (True, 2)])
async def test_the_fallback_reuses_an_answer_below_gave_to_the_same_arguments(rewrite: bool, base_calls: int) -> None:
    runtime = PatchRuntime()
    base = ToyLLM()
    spec = llm_spec("toy", factory=lambda below, config, deps: AnswersThenBreaks(below, rewrite))
    layer = layer_over(spec, ToyConfig(enabled=True), base, runtime)
    result = await layer.complete(request("original"))
    assert result.text == "base: original"
    assert base.calls == base_calls  # the same arguments: reused; other arguments: one call for the fallback
    assert runtime.stats.patches["toy"].fallbacks_by_reason["exception"] == 1


async def test_a_handle_used_outside_a_guarded_call_passes_straight_through() -> None:
    runtime = PatchRuntime()
    base = BrokenLLM()
    layer = layered(Behaviour(), runtime, base=base)
    assert isinstance(layer, PatchLayer)
    with pytest.raises(ConnectionError):
        await layer.enhancement.complete(request())  # the enhancement called directly, as a smoke check does
    assert runtime.stats.patches["toy"].below_failed == 0  # nothing was guarded, so nothing was counted
    assert base.calls == 1


async def test_switched_off_patch_goes_straight_below_and_is_traced_as_skipped() -> None:
    runtime = PatchRuntime()
    behaviour = Behaviour()
    layer = layered(behaviour, runtime)
    runtime.switches.table = {"toy": Switch(enabled=False)}
    with call_context(user_id="u1") as context:
        assert (await layer.complete(request("x"))).text == "base: x"
    assert [(e.outcome, e.reason) for e in context.trace] == [("skipped", "switched off")]
    runtime.switches.table = {"toy": Switch(enabled=True)}
    assert (await layer.complete(request("x"))).text == "toy(base: x)"
    assert runtime.stats.patches["toy"].skipped == 1


async def test_disabled_by_config_can_be_switched_on_at_runtime() -> None:
    runtime = PatchRuntime()
    layer = layer_over(llm_spec("toy"), ToyConfig(enabled=False), ToyLLM(), runtime)
    assert (await layer.complete(request("x"))).text == "base: x"
    runtime.switches.table = {"toy": Switch(enabled=True)}
    assert (await layer.complete(request("x"))).text == "toy(base: x)"


async def test_rollout_decides_per_user_from_the_call_context() -> None:
    runtime = PatchRuntime()
    layer = layered(Behaviour(), runtime, rollout_percent=0.0)
    with call_context(user_id="u1") as context:
        assert (await layer.complete(request("x"))).text == "base: x"
    assert context.trace[0].reason == "outside rollout"
    runtime.switches.table = {"toy": Switch(rollout_percent=100.0)}
    with call_context(user_id="u1"):
        assert (await layer.complete(request("x"))).text == "toy(base: x)"


async def test_methods_not_enhanced_pass_straight_through() -> None:
    class Dropping:  # enhances recall only; the other Memory methods must reach the base untouched
        async def recall(self, query: object) -> list[object]:
            return []

    spec = PatchSpec(
        name="toy_memory",
        kind=ComponentKind.MEMORY,
        interface=Memory,
        config_cls=ToyConfig,
        factory=lambda below, config, deps: Dropping(),
        enhances=("recall",),
    )
    base = ToyMemory()
    layer = layer_over(spec, ToyConfig(enabled=True), base, PatchRuntime())
    await layer.remember(Turn(conversation_key="c", role="user", text="hello", author_id="a", user_id="a"))
    assert [t.text for t in await layer.history("c", 5)] == ["hello"]
    assert await layer.forget_user("a") == 1
    assert base.turns == []


def test_a_layer_implements_the_interface_explicitly() -> None:
    base = ToyMemory()
    spec = PatchSpec(
        name="toy_memory",
        kind=ComponentKind.MEMORY,
        interface=Memory,
        config_cls=ToyConfig,
        factory=lambda below, config, deps: below,
        enhances=("recall",),
    )
    layer = layer_over(spec, ToyConfig(enabled=True), base, PatchRuntime())
    assert check_conformance(layer, Memory) == []
    assert isinstance(layer, PatchLayer)
    assert not hasattr(type(layer), "__getattr__")
    with pytest.raises(AttributeError):
        layer.turns  # type: ignore[attr-defined]  # noqa: B018 - nothing outside the interface is delegated
    assert (layer.below, layer.spec) == (base, spec)
    assert layer.enhancement is layer.below_handle  # the enhancement holds a handle, never the component below
    assert check_conformance(layer.below_handle, Memory) == []
    assert not hasattr(layer.below_handle, "turns")
    assert stack_of(layer) == ["toy_memory", "ToyMemory"]
