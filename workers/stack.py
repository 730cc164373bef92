"""Build the stack once per worker process: base components, then the patches over them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from gateway.settings import Settings
from workers.components import LLM, ComponentKind, EmotionReader, Handler, Memory, Voice
from workers.handler import ChatHandler, HandlerConfig

__all__ = ["Stack", "build_stack"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Stack:
    llm: LLM
    memory: Memory
    voice: Voice | None
    emotion: EmotionReader | None
    handler: Handler
    closers: list[Any]

    async def aclose(self) -> None:
        for component in self.closers:
            close = getattr(component, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception as exc:  # shutting down: report and go on closing the rest
                    log.warning("closing %s failed: %r", type(component).__name__, exc)


async def build_stack(settings: Settings) -> Stack:
    from workers.llm.client import build_base_llm
    from workers.llm.settings import LLMSettings
    from workers.memory import build_base_memory

    llm_settings = LLMSettings()
    base_llm = build_base_llm(llm_settings)
    memory = build_base_memory(settings.sqlalchemy_url)
    await memory.init()
    components: dict[ComponentKind, Any] = {ComponentKind.LLM: base_llm, ComponentKind.MEMORY: memory}
    components = await _apply_patches(components, settings)
    handler: Handler = ChatHandler(
        components[ComponentKind.LLM],
        components[ComponentKind.MEMORY],
        HandlerConfig(
            system_prompt=settings.system_prompt,
            history_turns=settings.history_turns,
            max_tokens=llm_settings.max_tokens,
        ),
    )
    return Stack(
        llm=components[ComponentKind.LLM],
        memory=components[ComponentKind.MEMORY],
        voice=components.get(ComponentKind.VOICE),
        emotion=components.get(ComponentKind.EMOTION),
        handler=handler,
        closers=[base_llm, memory],
    )


async def _apply_patches(components: dict[ComponentKind, Any], settings: Settings) -> dict[ComponentKind, Any]:
    return components
