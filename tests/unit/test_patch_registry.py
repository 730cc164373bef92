"""Ordering by requires/above/below, kinds the application declares, and start-up errors for cycles and missing requirements."""

from __future__ import annotations

from typing import Any

import pytest

from patches.layer import stack_of
from patches.registry import PatchOrderError, PatchRegistry
from patches.runtime import PatchRuntime
from patches.spec import PatchSpec
from tests.unit.test_patch_toys import ToyConfig, ToyLLM, ToyMemory, llm_spec, request
from workers.components import Handler, Memory

KINDS = ("memory", "llm", "handler")


def registry_of(*specs: PatchSpec) -> PatchRegistry:
    return PatchRegistry(specs)


def test_requires_above_and_below_order_the_stack_bottom_up() -> None:
    registry = registry_of(
        llm_spec("cache", requires=("resilience",)),  # resilience must sit below cache
        llm_spec("tracing", below=("resilience",)),  # tracing sits below resilience
        llm_spec("redact", above=("cache",)),  # redact sits above cache
        llm_spec("resilience"),
    )
    assert [spec.name for spec in registry.ordered("llm")] == ["tracing", "resilience", "cache", "redact"]
    assert registry.ordered("memory") == []


def test_ties_are_broken_by_name_whatever_the_registration_order() -> None:
    names = ["zeta", "alpha", "mid"]
    orders = {
        tuple(spec.name for spec in registry_of(*(llm_spec(n) for n in permutation)).ordered("llm"))
        for permutation in (names, names[::-1])
    }
    assert orders == {("alpha", "mid", "zeta")}


async def test_build_stack_applies_every_patch_in_kind_order() -> None:
    registry = registry_of(llm_spec("upper", requires=("lower",)), llm_spec("lower"))
    configs = {"upper": ToyConfig(enabled=True), "lower": ToyConfig(enabled=True)}
    memory = ToyMemory()
    runtime = PatchRuntime()
    stack = await runtime.build_stack(registry, {"llm": ToyLLM(), "memory": memory}, kinds=KINDS, configs=configs)
    assert stack_of(stack["llm"]) == ["upper", "lower", "ToyLLM"]
    assert stack["memory"] is memory
    assert (await stack["llm"].complete(request("x"))).text == "upper(lower(base: x))"
    assert runtime.stacks["llm"] == ["upper", "lower", "ToyLLM"]
    assert [entry["position"] for entry in runtime.describe(registry)] == [2, 1]


class Greeter:
    """A handler base built from the patched LLM (what ``later`` is for)."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm

    async def handle(self, envelope: Any) -> Any:
        return (await self.llm.complete(request(envelope))).text


class Exclaim:
    def __init__(self, below: Handler) -> None:
        self.below = below

    async def handle(self, envelope: Any) -> Any:
        return str(await self.below.handle(envelope)) + "!"


async def test_a_later_base_is_built_over_the_patched_kinds_before_it_and_patched_itself() -> None:
    handler_patch = PatchSpec(
        name="exclaim",
        kind="handler",
        interface=Handler,
        config_cls=ToyConfig,
        factory=lambda below, config, deps: Exclaim(below),
        enhances=("handle",),
    )
    registry = registry_of(llm_spec("upper"), handler_patch)
    configs = {"upper": ToyConfig(enabled=True), "exclaim": ToyConfig(enabled=True)}
    runtime = PatchRuntime()
    stack = await runtime.build_stack(
        registry,
        {"llm": ToyLLM()},
        kinds=KINDS,
        later={"handler": lambda built: Greeter(built["llm"])},
        configs=configs,
    )
    assert stack_of(stack["handler"]) == ["exclaim", "Greeter"]
    assert await stack["handler"].handle("hi") == "upper(base: hi)!"


async def test_patches_of_a_kind_the_application_lacks_or_has_no_base_for_are_refused() -> None:
    odd = llm_spec("odd", kind="teleporter")
    memory_patch = PatchSpec(
        name="recall_more",
        kind="memory",
        interface=Memory,
        config_cls=ToyConfig,
        factory=lambda below, config, deps: below,
        enhances=("recall",),
    )
    runtime = PatchRuntime()
    stack = await runtime.build_stack(registry_of(odd, memory_patch), {"llm": ToyLLM()}, kinds=KINDS)
    assert "memory" not in stack
    assert "'teleporter' is not a component kind of this application (memory, llm, handler)" in (
        runtime.refusals["odd"].reason
    )
    assert runtime.refusals["recall_more"].reason == "no base memory component in this stack"


async def test_a_requirement_that_was_refused_or_is_broken_refuses_the_patch_that_needs_it() -> None:
    registry = registry_of(
        llm_spec("needs_refused", requires=("refused",)),
        llm_spec("refused", prerequisite=lambda config, deps: "no key"),
        llm_spec("needs_broken", requires=("broken",)),
    )
    registry.mark_broken("broken", "cannot load broken:SPEC: ImportError: nope", "entry point broken = broken:SPEC")
    runtime = PatchRuntime()
    await runtime.build_stack(registry, {"llm": ToyLLM()}, kinds=KINDS)
    assert (
        runtime.refusals["needs_refused"].reason
        == "requires 'refused', which was not applied: prerequisite not met: no key"
    )
    assert "requires 'broken', which is installed but broken" in runtime.refusals["needs_broken"].reason


async def test_a_cycle_is_an_error_naming_the_patches() -> None:
    # b below a, c below b, and "a below c" puts a below c: a < c < b < a.
    registry = registry_of(llm_spec("a", requires=("b",), below=("c",)), llm_spec("b", requires=("c",)), llm_spec("c"))
    with pytest.raises(PatchOrderError, match="cycle") as error:
        await PatchRuntime().build_stack(registry, {"llm": ToyLLM()}, kinds=KINDS)
    assert all(name in str(error.value) for name in ("a", "b", "c"))


async def test_a_missing_requirement_is_an_error_at_build_time() -> None:
    registry = registry_of(llm_spec("cache", requires=("resilience",)))
    with pytest.raises(PatchOrderError, match="'cache' requires 'resilience', which is not installed"):
        await PatchRuntime().build_stack(registry, {"llm": ToyLLM()}, kinds=KINDS)


def test_a_duplicate_name_is_refused() -> None:
    registry = registry_of(llm_spec("a"))
    with pytest.raises(ValueError, match="already registered"):
        registry.register(llm_spec("a"))


def test_above_or_below_a_patch_nobody_installed_is_only_a_hint() -> None:
    registry = registry_of(llm_spec("a", below=("not_here",)), llm_spec("b", above=("not_here_either",)))
    assert [spec.name for spec in registry.ordered("llm")] == ["a", "b"]


class CalmReader:
    """An emotion base: everyone is neutral."""

    async def read(self, text: str) -> Any:
        return "neutral"

    async def state(self, user_id: str) -> Any:
        return "neutral"

    async def observe(self, user_id: str, reading: Any) -> Any:
        return reading


class Cheerful:
    def __init__(self, below: Any) -> None:
        self.below = below

    async def state(self, user_id: str) -> Any:
        return "joy"


async def test_an_emotion_patch_is_applied_first_and_later_kinds_get_the_patched_reader() -> None:
    from workers.components import COMPONENT_KINDS, EmotionReader

    seen: dict[str, Any] = {}

    def reads_emotion(below: Any, config: Any, deps: Any) -> Any:
        seen["emotion"] = deps["emotion"]
        return below

    emotion_patch = PatchSpec(
        name="cheerful",
        kind="emotion",
        interface=EmotionReader,
        config_cls=ToyConfig,
        factory=lambda below, config, deps: Cheerful(below),
        enhances=("state",),
    )
    registry = registry_of(emotion_patch, llm_spec("tone_like", factory=reads_emotion, deps=("emotion",)))
    configs = {"cheerful": ToyConfig(enabled=True), "tone_like": ToyConfig(enabled=True)}
    runtime = PatchRuntime()
    stack = await runtime.build_stack(
        registry, {"emotion": CalmReader(), "llm": ToyLLM()}, kinds=COMPONENT_KINDS, configs=configs
    )
    assert stack_of(stack["emotion"]) == ["cheerful", "CalmReader"]
    assert seen["emotion"] is stack["emotion"]  # the LLM patch reads the patched emotion reader
    assert await seen["emotion"].state("u1") == "joy"
    assert await seen["emotion"].read("hi") == "neutral"  # not enhanced: straight through
