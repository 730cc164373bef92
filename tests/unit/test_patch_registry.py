"""Ordering by requires/before, and start-up errors for cycles and missing requirements."""

from __future__ import annotations

import pytest

from patches.layer import stack_of
from patches.registry import PatchOrderError, PatchRegistry
from tests.unit.test_patch_toys import Runtime, ToyConfig, ToyLLM, ToyMemory, llm_spec, request
from workers.components import ComponentKind


def registry_of(*specs: object) -> PatchRegistry:
    registry = PatchRegistry()
    for spec in specs:
        registry.register(spec)  # type: ignore[arg-type]
    return registry


def test_requires_and_before_order_the_stack_bottom_up() -> None:
    registry = registry_of(
        llm_spec("cache", requires=("resilience",)),  # resilience must sit below cache
        llm_spec("tracing", before=("resilience",)),  # tracing sits below resilience
        llm_spec("resilience"),
    )
    assert [spec.name for spec in registry.ordered(ComponentKind.LLM)] == ["tracing", "resilience", "cache"]
    assert registry.ordered(ComponentKind.MEMORY) == []


async def test_build_stack_applies_every_patch_in_order() -> None:
    registry = registry_of(llm_spec("upper", requires=("lower",)), llm_spec("lower"))
    configs = {"upper": ToyConfig(enabled=True), "lower": ToyConfig(enabled=True)}
    memory = ToyMemory()
    stack = registry.build_stack(
        {ComponentKind.LLM: ToyLLM(), ComponentKind.MEMORY: memory}, configs=configs, **Runtime().options()
    )
    assert stack_of(stack[ComponentKind.LLM]) == ["upper", "lower", "ToyLLM"]
    assert stack[ComponentKind.MEMORY] is memory
    assert (await stack[ComponentKind.LLM].complete(request("x"))).text == "upper(lower(base: x))"
    async_stack = await registry.build_stack_async({ComponentKind.LLM: ToyLLM()}, configs=configs)
    assert stack_of(async_stack[ComponentKind.LLM]) == ["upper", "lower", "ToyLLM"]


def test_a_cycle_is_an_error_naming_the_patches() -> None:
    # b below a, c below b, and "a before c" puts a below c: a < c < b < a.
    registry = registry_of(llm_spec("a", requires=("b",), before=("c",)), llm_spec("b", requires=("c",)), llm_spec("c"))
    with pytest.raises(PatchOrderError, match="cycle") as error:
        registry.build_stack({ComponentKind.LLM: ToyLLM()})
    assert all(name in str(error.value) for name in ("a", "b", "c"))


def test_a_missing_requirement_is_an_error_at_build_time() -> None:
    registry = registry_of(llm_spec("cache", requires=("resilience",)))
    with pytest.raises(PatchOrderError, match="'cache' requires 'resilience', which is not registered"):
        registry.build_stack({ComponentKind.LLM: ToyLLM()})


def test_a_duplicate_name_is_refused() -> None:
    registry = registry_of(llm_spec("a"))
    with pytest.raises(ValueError, match="already registered"):
        registry.register(llm_spec("a"))


def test_before_a_patch_nobody_registered_is_only_a_hint() -> None:
    registry = registry_of(llm_spec("a", before=("not_here",)))
    assert [spec.name for spec in registry.ordered(ComponentKind.LLM)] == ["a"]
