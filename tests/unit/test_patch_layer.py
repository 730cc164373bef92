"""The guarded layer at call time: fallbacks are counted, logged and traced; the base's failures are not hidden."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from patches.conformance import check_conformance
from patches.context import call_context, current_trace
from patches.layer import PatchLayer, build_layer, stack_of
from patches.metrics import ProcessPatchCollector
from patches.spec import PatchSpec
from patches.switches import Switch
from tests.unit.test_patch_toys import (
    Behaviour,
    BrokenLLM,
    Runtime,
    ToyConfig,
    ToyEnhancement,
    ToyLLM,
    ToyMemory,
    llm_spec,
    request,
)
from workers.components import LLM, ComponentKind, Memory, Turn


def layered(behaviour: Behaviour, runtime: Runtime, *, base: Any = None, **config: Any) -> LLM:
    spec = llm_spec("toy", behaviour)
    below = base if base is not None else ToyLLM()
    settings = ToyConfig(enabled=True, **config)
    layer: LLM = build_layer(spec, settings, below, ToyEnhancement(below, "toy", behaviour), **runtime.options())
    return layer


def prometheus(runtime: Runtime) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(ProcessPatchCollector(runtime.stats))
    return registry


async def test_applied_call_returns_the_enhanced_result_and_traces_it() -> None:
    runtime = Runtime()
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
    runtime = Runtime()
    base = ToyLLM()
    layer = layered(Behaviour(mode=mode), runtime, base=base, **config)
    with caplog.at_level(logging.WARNING, logger="patches.layer"), call_context(user_id="u1") as context:
        result = await layer.complete(request("hello"))

    assert result.text == "base: hello"  # the layer below answered
    stats = runtime.stats.patches["toy"]
    assert stats.errors_by_reason[reason] == 1
    assert stats.fallbacks_by_reason[reason] == 1
    assert stats.calls == 1
    registry = prometheus(runtime)
    assert registry.get_sample_value("patchbay_patch_errors_total", {"patch": "toy", "reason": reason}) == 1
    assert registry.get_sample_value("patchbay_patch_fallbacks_total", {"patch": "toy", "reason": reason}) == 1
    fallbacks = [r for r in caplog.records if r.getMessage().startswith("fallback patch=toy method=complete")]
    assert len(fallbacks) == 1 and f"reason={reason}" in fallbacks[0].getMessage()
    assert fallbacks[0].levelno == logging.WARNING
    [entry] = context.trace
    assert (entry.outcome, entry.reason.split(":")[0]) == ("fallback", reason)


async def test_the_base_exception_propagates_through_the_layer() -> None:
    runtime = Runtime()
    layer = layered(Behaviour(mode="raise"), runtime, base=BrokenLLM())
    with pytest.raises(ConnectionError, match="base provider is down"):
        await layer.complete(request())
    stats = runtime.stats.patches["toy"]
    assert (stats.errors, stats.fallbacks) == (1, 0)  # it tried to fall back; the base failed on its own


async def test_a_base_failure_inside_the_enhancement_still_reaches_the_caller() -> None:
    runtime = Runtime()
    layer = layered(Behaviour(), runtime, base=BrokenLLM())
    with pytest.raises(ConnectionError):
        await layer.complete(request())  # the enhancement itself calls the base, which raises: fallback, raises again
    assert runtime.stats.patches["toy"].errors_by_reason["exception"] == 1


async def test_switched_off_patch_goes_straight_below_and_is_traced_as_skipped() -> None:
    runtime = Runtime()
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
    runtime = Runtime()
    spec = llm_spec("toy")
    base = ToyLLM()
    layer = build_layer(
        spec, ToyConfig(enabled=False), base, ToyEnhancement(base, "toy", Behaviour()), **runtime.options()
    )
    assert (await layer.complete(request("x"))).text == "base: x"
    runtime.switches.table = {"toy": Switch(enabled=True)}
    assert (await layer.complete(request("x"))).text == "toy(base: x)"


async def test_rollout_decides_per_user_from_the_call_context() -> None:
    runtime = Runtime()
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
        layer_factory=lambda below, config, deps: Dropping(),
        enhances=("recall",),
    )
    base = ToyMemory()
    layer = build_layer(spec, ToyConfig(enabled=True), base, Dropping(), **Runtime().options())
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
        layer_factory=lambda below, config, deps: below,
        enhances=("recall",),
    )
    layer = build_layer(spec, ToyConfig(enabled=True), base, base, **Runtime().options())
    assert check_conformance(layer, Memory) == []
    assert isinstance(layer, PatchLayer)
    assert not hasattr(type(layer), "__getattr__")
    with pytest.raises(AttributeError):
        layer.turns  # type: ignore[attr-defined]  # noqa: B018 - nothing outside the interface is delegated
    assert (layer.below, layer.spec, layer.enhancement) == (base, spec, base)
    assert stack_of(layer) == ["toy_memory", "ToyMemory"]
