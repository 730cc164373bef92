"""Build the stack once per worker process: base components, then every registered patch over them.

    base LLM (litellm; SmolLM2 offline by default) ─┐
    base memory (SQL history + scoped recall)       ├─ patches.registry.build_stack_async ─► ChatHandler
    base voice (espeak-ng, or none) + emotion       ┘

Then the process joins the cluster's control plane: runtime switches (polled from Redis),
per-patch counters and health (flushed to Redis), and the list of applied patches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.asyncio import Redis as AsyncRedis

from gateway.shared.redis_urls import redis_py_url
from gateway.shared.settings import Settings
from workers.components import LLM, ComponentKind, EmotionReader, Handler, Memory, Voice
from workers.handler import ChatHandler, HandlerConfig, VoiceReplies

__all__ = ["Stack", "build_stack"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Stack:
    llm: LLM
    memory: Memory
    voice: Voice | None
    emotion: EmotionReader | None
    handler: Handler
    closers: list[Any] = field(default_factory=list)

    async def aclose(self) -> None:
        for component in self.closers:
            try:
                await component()
            except Exception as exc:  # shutting down: report and go on closing the rest
                log.warning("closing %r failed: %r", component, exc)


async def build_stack(settings: Settings) -> Stack:
    from patches.catalog import load_builtin_patches
    from patches.control import publish_registry
    from patches.metrics import StatsFlusher
    from patches.registry import build_stack_async, default_registry
    from patches.switches import process_switchboard
    from workers.emotion import EmotionManager
    from workers.llm.client import build_base_llm
    from workers.llm.settings import LLMSettings
    from workers.memory import build_base_memory
    from workers.voice import build_base_voice
    from workers.voice.preferences import VoicePreferences

    redis_url = redis_py_url(settings.effective_redis_url)
    llm_settings = LLMSettings()
    base_llm = build_base_llm(llm_settings)
    memory = build_base_memory(settings.sqlalchemy_url)
    await memory.init()
    emotion = EmotionManager(redis_url)
    base_voice = build_base_voice()  # None when no engine is installed: the reason is logged, replies stay text

    # Switches first, so the stack starts with the cluster's current state rather than the config's.
    process_switchboard.start_background_thread(redis_url)
    load_builtin_patches()
    base: dict[ComponentKind, Any] = {ComponentKind.LLM: base_llm, ComponentKind.MEMORY: memory}
    if base_voice is not None:
        base[ComponentKind.VOICE] = base_voice
    stack = await build_stack_async(base, deps={"emotion": emotion, "redis_url": redis_url})
    flusher = StatsFlusher(redis_url)
    flusher.start_background_thread()
    with redis.Redis.from_url(redis_url) as client:
        publish_registry(client, default_registry)

    from patches.layer import stack_of

    for kind, component in stack.items():
        log.info("stack %s: %s", kind.value, " → ".join(stack_of(component)) or type(component).__name__)

    await _warm_up(base_llm, memory)
    voice = stack.get(ComponentKind.VOICE)
    preferences_redis = AsyncRedis.from_url(redis_url)
    handler = ChatHandler(
        stack[ComponentKind.LLM],
        stack[ComponentKind.MEMORY],
        HandlerConfig(
            system_prompt=settings.system_prompt,
            history_turns=settings.history_turns,
            max_tokens=llm_settings.max_tokens,
        ),
        emotion=emotion,
        voice=VoiceReplies(voice, VoicePreferences(preferences_redis)) if voice is not None else None,
    )

    async def stop_background() -> None:
        flusher.stop()
        process_switchboard.stop()

    return Stack(
        llm=stack[ComponentKind.LLM],
        memory=stack[ComponentKind.MEMORY],
        voice=voice,
        emotion=emotion,
        handler=handler,
        closers=[
            stop_background,
            *_enhancement_closers(stack[ComponentKind.LLM]),
            base_llm.aclose,
            memory.aclose,
            emotion.aclose,
            preferences_redis.aclose,
        ],
    )


def _enhancement_closers(component: Any) -> list[Any]:
    """``aclose`` of every patch enhancement in a layered component (layers expose ``enhancement``/``below``)."""
    closers = []
    while hasattr(component, "below"):
        close = getattr(getattr(component, "enhancement", None), "aclose", None)
        if close is not None:
            closers.append(close)
        component = component.below
    return closers


async def _warm_up(base_llm: Any, memory: Any) -> None:
    """Pay the one-time costs (importing litellm, the embedder's first pass) before the first message."""
    import asyncio

    from workers.llm.client import LiteLLMClient
    from workers.llm.litellm_loader import load_litellm

    if isinstance(base_llm, LiteLLMClient):
        await asyncio.to_thread(load_litellm)
    try:
        await memory.embedder.embed(["warm up"])
    except Exception as exc:  # the embedder reports its own failures at recall time; start-up goes on
        log.warning("embedder warm-up failed: %r", exc)
