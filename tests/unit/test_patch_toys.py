"""Toy base components and patches shared by the patch framework tests (this module holds no tests).

The toys implement the real Protocols of ``workers.components``; every test builds its own
``PatchRuntime`` (switches, health, stats) so no state leaks between tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from patches.layer import build_layer
from patches.runtime import PatchRuntime
from patches.spec import PatchConfig, PatchSpec
from workers.components import (
    LLM,
    ComponentKind,
    LLMRequest,
    LLMResult,
    Memory,
    Recalled,
    RecallQuery,
    StreamsWhole,
    Turn,
)


class ToyLLM(StreamsWhole):
    """A base LLM that always answers "base: <last message>"."""

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, request: LLMRequest) -> LLMResult:
        self.calls += 1
        return LLMResult(text=f"base: {request.messages[-1]['content']}", model="toy")


class BrokenLLM(StreamsWhole):
    """A base that fails on its own: a layer above must not hide this, nor be blamed for it."""

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, request: LLMRequest) -> LLMResult:
        self.calls += 1
        raise ConnectionError("the base provider is down")


class ToyMemory:
    def __init__(self) -> None:
        self.turns: list[Turn] = []

    async def remember(self, turn: Turn) -> None:
        self.turns.append(turn)

    async def history(self, conversation_key: str, limit: int) -> list[Turn]:
        return [t for t in self.turns if t.conversation_key == conversation_key][-limit:]

    async def recall(self, query: RecallQuery) -> list[Recalled]:
        return [Recalled(turn=t, score=0.5) for t in self.turns if query.text in t.text][: query.limit]

    async def forget_user(self, user_id: str) -> int:
        before = len(self.turns)
        self.turns = [t for t in self.turns if t.user_id != user_id]
        return before - len(self.turns)


@dataclass
class Behaviour:
    """What a ``ToyEnhancement`` does on its next calls; tests flip it to make the patch fail."""

    mode: str = "ok"  # ok | raise | hang | bad-result
    never: asyncio.Event = field(default_factory=asyncio.Event)


class ToyEnhancement:
    """Enhances ``complete``: answers "<tag>(<base answer>)", or fails as ``behaviour.mode`` says."""

    def __init__(self, below: LLM, tag: str, behaviour: Behaviour) -> None:
        self.below = below
        self.tag = tag
        self.behaviour = behaviour

    async def complete(self, request: LLMRequest) -> LLMResult:
        mode = self.behaviour.mode
        if mode == "raise":
            raise RuntimeError("enhancement exploded")
        if mode == "hang":
            await self.behaviour.never.wait()  # never set: only the time budget ends this
        inner = await self.below.complete(request)
        text = "" if mode == "bad-result" else f"{self.tag}({inner.text})"
        return LLMResult(text=text, model=inner.model)


def reject_empty(method: str, result: Any) -> str | None:
    return "empty text" if isinstance(result, LLMResult) and not result.text else None


class ToyConfig(PatchConfig):
    pass


def llm_spec(
    name: str,
    behaviour: Behaviour | None = None,
    *,
    requires: tuple[str, ...] = (),
    above: tuple[str, ...] = (),
    below: tuple[str, ...] = (),
    **overrides: Any,
) -> PatchSpec:
    shared = behaviour if behaviour is not None else Behaviour()

    def factory(below: Any, config: Any, deps: Mapping[str, Any]) -> ToyEnhancement:
        return ToyEnhancement(below, name, shared)

    fields: dict[str, Any] = {
        "name": name,
        "kind": ComponentKind.LLM,
        "interface": LLM,
        "config_cls": ToyConfig,
        "factory": factory,
        "enhances": ("complete",),
        "requires": requires,
        "above": above,
        "below": below,
        "validate": reject_empty,
        "description": f"toy patch {name}",
    }
    return PatchSpec(**(fields | overrides))


def request(text: str = "hi", user_id: str | None = "u1") -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": text}], user_id=user_id)


def layer_over(spec: PatchSpec, config: PatchConfig, base: Any, runtime: PatchRuntime) -> Any:
    """``spec``'s layer over ``base`` in ``runtime``, without apply's checks (what layer tests want)."""
    return build_layer(spec, config, base, runtime)


__all__ = [
    "Behaviour",
    "BrokenLLM",
    "Memory",
    "ToyConfig",
    "ToyEnhancement",
    "ToyLLM",
    "ToyMemory",
    "layer_over",
    "llm_spec",
    "reject_empty",
    "request",
]
