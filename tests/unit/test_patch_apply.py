"""``apply`` proves a patch before wrapping, refuses with a logged reason, closes what it built, and never raises."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from patches.conformance import check_conformance
from patches.layer import PatchLayer, stack_of
from patches.runtime import PatchRuntime, make_apply_function
from patches.spec import PatchConfig, PatchSpec
from tests.unit.test_patch_toys import Behaviour, ToyConfig, ToyLLM, llm_spec, request
from workers.components import LLM, ComponentKind, EmotionReading, LLMRequest, LLMResult, StreamsWhole


class SyncComplete:  # what broke the wrappers this design replaces: a sync method where the interface is async
    def complete(self, request: LLMRequest) -> LLMResult:
        return LLMResult(text="sync", model="x")


class WrongSignature:
    async def complete(self, prompt: str, temperature: float) -> LLMResult:
        return LLMResult(text=prompt, model="x")


class NoComplete:
    async def generate(self, request: LLMRequest) -> LLMResult:
        return LLMResult(text="", model="x")


class ReturnsTheWrongThing:  # conforms on paper; only the smoke check sees the str
    async def complete(self, request: LLMRequest) -> Any:
        return "just a string"


async def smoke_expects_llm_result(enhancement: Any) -> None:
    result = await enhancement.complete(request("smoke"))
    if not isinstance(result, LLMResult):
        raise TypeError(f"complete returned {type(result).__name__}, not LLMResult")


def spec_with(enhancement: Any, **overrides: Any) -> PatchSpec:
    return llm_spec("toy", factory=lambda below, config, deps: enhancement, **overrides)


@pytest.mark.parametrize(
    ("enhancement", "expected"),
    [
        (SyncComplete(), "is sync"),
        (WrongSignature(), "positional parameters ['prompt', 'temperature']"),
        (NoComplete(), "complete: missing"),
        (ReturnsTheWrongThing(), "smoke check failed: TypeError: complete returned str"),
    ],
)
async def test_apply_refuses_a_non_conforming_layer(
    enhancement: Any, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = PatchRuntime()
    base = ToyLLM()
    spec = spec_with(enhancement, smoke=smoke_expects_llm_result)
    with caplog.at_level(logging.WARNING, logger="patches.runtime"):
        result = await runtime.apply(spec, base, ToyConfig(enabled=True))
    assert result is base
    assert expected in runtime.refusals["toy"].reason
    assert any("patch toy not applied" in r.getMessage() and expected in r.getMessage() for r in caplog.records)


async def test_apply_never_raises_even_if_the_factory_does(caplog: pytest.LogCaptureFixture) -> None:
    def explode(below: Any, config: Any, deps: Any) -> Any:
        raise RuntimeError("factory bug")

    runtime = PatchRuntime()
    base = ToyLLM()
    with caplog.at_level(logging.WARNING):
        assert await runtime.apply(llm_spec("toy", factory=explode), base, ToyConfig(enabled=True)) is base
    assert "RuntimeError: factory bug" in runtime.refusals["toy"].reason


async def test_apply_refuses_a_failed_prerequisite_and_missing_dependencies() -> None:
    runtime = PatchRuntime()
    base = ToyLLM()
    needs_key = llm_spec("toy", prerequisite=lambda config, deps: "no API key configured")
    assert await runtime.apply(needs_key, base, ToyConfig(enabled=True)) is base
    assert runtime.refusals["toy"].reason == "prerequisite not met: no API key configured"
    needs_emotion = llm_spec("toy2", deps=("emotion",))
    assert await runtime.apply(needs_emotion, base, ToyConfig(enabled=True)) is base
    assert runtime.refusals["toy2"].reason == "missing dependencies: emotion"


async def test_apply_refuses_a_base_that_does_not_implement_the_interface() -> None:
    runtime = PatchRuntime()
    base = SyncComplete()
    assert await runtime.apply(llm_spec("toy"), base, ToyConfig(enabled=True)) is base
    assert "the component below does not implement LLM" in runtime.refusals["toy"].reason


class Closable:
    def __init__(self, below: Any) -> None:
        self.below = below
        self.closed = 0

    async def complete(self, request: LLMRequest) -> LLMResult:
        return await self.below.complete(request)

    async def aclose(self) -> None:
        self.closed += 1


async def test_an_enhancement_refused_after_it_was_built_is_closed_and_an_applied_one_at_shutdown() -> None:
    built: list[Closable] = []

    def factory(below: Any, config: Any, deps: Any) -> Closable:
        built.append(Closable(below))
        return built[-1]

    async def failing_smoke(enhancement: Any) -> None:
        raise RuntimeError("smoke says no")

    runtime = PatchRuntime()
    assert (
        await runtime.apply(llm_spec("refused", factory=factory, smoke=failing_smoke), ToyLLM(), ToyConfig())
        is not None
    )
    assert built[0].closed == 1  # refused after the factory ran: its resources are not leaked
    layer = await runtime.apply(llm_spec("kept", factory=factory), ToyLLM(), ToyConfig(enabled=True))
    assert isinstance(layer, PatchLayer)
    assert built[1].closed == 0
    await runtime.aclose()
    assert built[1].closed == 1


async def test_a_patch_disabled_by_config_is_still_wrapped_so_it_can_be_switched_on() -> None:
    runtime = PatchRuntime()
    layer = await runtime.apply(llm_spec("toy"), ToyLLM(), ToyConfig(enabled=False))
    assert isinstance(layer, PatchLayer)
    assert (await layer.complete(request("x"))).text == "base: x"
    assert "toy" not in runtime.refusals


async def test_apply_functions_stack_layers_that_conform() -> None:
    runtime = PatchRuntime()
    first = llm_spec("first", Behaviour())
    second = llm_spec("second", Behaviour())
    apply_first = make_apply_function(first)
    apply_second = make_apply_function(second)
    assert apply_first.__name__ == "apply_first_patch"
    component = await apply_first(ToyLLM(), ToyConfig(enabled=True))  # a runtime of its own: config decides
    component = await apply_second(component, ToyConfig(enabled=True), runtime=runtime)
    assert stack_of(component) == ["second", "first", "ToyLLM"]
    assert check_conformance(component, LLM) == []
    assert (await component.complete(request("x"))).text == "second(first(base: x))"
    assert runtime.stats.patches["second"].calls == 1 and "first" not in runtime.stats.patches
    broken = await apply_second(SyncComplete(), ToyConfig(enabled=True))
    assert isinstance(broken, SyncComplete)  # refused, never raised


def test_conformance_checks_async_both_ways_and_required_parameters() -> None:
    class AsyncWhereSync:
        async def complete(self, request: LLMRequest) -> LLMResult:
            raise NotImplementedError

    class ExtraRequired:
        async def read(self, text: str, language: str) -> EmotionReading:
            raise NotImplementedError

    class ExtraOptional(StreamsWhole):
        async def complete(self, request: LLMRequest, trace: bool = False) -> LLMResult:
            raise NotImplementedError

    class SyncProtocol:
        def complete(self, request: LLMRequest) -> LLMResult:
            raise NotImplementedError

    assert check_conformance(AsyncWhereSync(), SyncProtocol) == ["complete: is async, but the interface's is sync"]
    assert check_conformance(ExtraOptional(), LLM) == []
    from workers.components import EmotionReader

    problems = check_conformance(ExtraRequired(), EmotionReader, ["read"])
    assert problems == ["read: requires parameters the interface does not pass: ['language']"]


class EnvConfig(PatchConfig, patch="unit_env_patch", default_enabled=True):
    max_queries: int = 3


def test_patch_config_reads_the_enable_switch_env_and_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = tmp_path / "patchbay.toml"
    toml.write_text("[patches.unit_env_patch]\nmax_queries = 5\nrollout_percent = 40\ntimeout_s = 2.5\n")
    monkeypatch.setenv("PATCHBAY_CONFIG", str(toml))
    config = EnvConfig()
    assert (config.enabled, config.max_queries, config.rollout_percent, config.timeout_s) == (True, 5, 40.0, 2.5)
    monkeypatch.setenv("ENABLE_UNIT_ENV_PATCH", "false")
    monkeypatch.setenv("PATCHBAY_PATCH_UNIT_ENV_PATCH_MAX_QUERIES", "7")
    config = EnvConfig()
    assert (config.enabled, config.max_queries, config.rollout_percent) == (False, 7, 40.0)
    monkeypatch.setenv("PATCHBAY_PATCH_UNIT_ENV_PATCH_ROLLOUT_PERCENT", "250")
    with pytest.raises(ValueError, match="rollout_percent"):
        EnvConfig()


def test_a_spec_naming_a_method_the_interface_lacks_fails_at_import() -> None:
    with pytest.raises(ValueError, match="does not declare"):
        PatchSpec(
            name="bad",
            kind=ComponentKind.LLM,
            interface=LLM,
            config_cls=ToyConfig,
            factory=lambda below, config, deps: below,
            enhances=("generate",),
        )
    with pytest.raises(ValueError, match="both above and below"):
        llm_spec("bad", above=("x",), below=("x",))
    with pytest.raises(ValueError, match="kind"):
        llm_spec("bad", kind="not a kind")
    assert llm_spec("fine", kind=ComponentKind.LLM).kind == "llm" and type(llm_spec("f").kind) is str
