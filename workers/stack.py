"""Build the stack once per worker process: base components, then every installed patch over them.

    emotion reader (classifier + shared state)      ─┐
    base memory (SQL history + scoped recall)        │
    base LLM (litellm; SmolLM2 offline by default)   ├─ PatchRuntime.build_stack, kind by kind ─► the handler,
    base voice (espeak-ng, or none)                  │  (patches from the patchbay.patches       then its patches
    ChatHandler over the patched components above   ─┘   entry points, patches.discovery)

The kinds and their order are the application's (``workers.components.COMPONENT_KINDS``): a kind's
patched component is a dependency of the kinds after it. The process joins the cluster's control
plane through its one ``PatchRuntime``: runtime switches polled from Redis, per-patch counters and
health flushed to Redis, and what it installed, applied, refused and found broken published.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.asyncio import Redis as AsyncRedis

from gateway.shared.redis_urls import redis_py_url
from gateway.shared.settings import Settings
from patches.discovery import discover
from patches.runtime import PatchRuntime
from workers.components import COMPONENT_KINDS, LLM, ComponentKind, EmotionReader, Handler, Memory, Voice
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
    patches: PatchRuntime | None = None
    closers: list[Any] = field(default_factory=list)

    async def aclose(self) -> None:
        for component in self.closers:
            try:
                await component()
            except Exception as exc:  # shutting down: report and go on closing the rest
                log.warning("closing %r failed: %r", component, exc)


async def build_stack(settings: Settings) -> Stack:
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
    preferences_redis = AsyncRedis.from_url(redis_url)
    vision = _build_vision(preferences_redis, llm_settings)

    def handler_over(patched: Mapping[str, Any]) -> ChatHandler:
        voice = patched.get(ComponentKind.VOICE)
        return ChatHandler(
            patched[ComponentKind.LLM],
            patched[ComponentKind.MEMORY],
            HandlerConfig(
                system_prompt=settings.system_prompt,
                history_turns=settings.history_turns,
                max_tokens=llm_settings.max_tokens,
            ),
            emotion=patched[ComponentKind.EMOTION],
            voice=VoiceReplies(voice, VoicePreferences(preferences_redis)) if voice is not None else None,
            vision=vision,
        )

    runtime = PatchRuntime()
    # Switches first, so the stack starts with the cluster's current state rather than the config's.
    runtime.start(redis_url)
    registry = discover()
    base: dict[str, Any] = {ComponentKind.EMOTION: emotion, ComponentKind.MEMORY: memory, ComponentKind.LLM: base_llm}
    if base_voice is not None:
        base[ComponentKind.VOICE] = base_voice
    try:
        stack = await runtime.build_stack(
            registry,
            base,
            kinds=COMPONENT_KINDS,
            later={ComponentKind.HANDLER: handler_over},
            deps={"redis_url": redis_url, "base_llm_model": str(getattr(base_llm, "model", type(base_llm).__name__))},
        )
    except Exception:
        runtime.stop()
        raise
    with redis.Redis.from_url(redis_url) as client:
        runtime.publish(client, registry)

    await _warm_up(base_llm, memory, llm_settings)

    async def stop_runtime() -> None:
        runtime.stop()

    return Stack(
        llm=stack[ComponentKind.LLM],
        memory=stack[ComponentKind.MEMORY],
        voice=stack.get(ComponentKind.VOICE),
        emotion=stack[ComponentKind.EMOTION],
        handler=stack[ComponentKind.HANDLER],
        patches=runtime,
        closers=[
            stop_runtime,
            runtime.aclose,  # every enhancement's own resources, whatever its kind
            base_llm.aclose,
            memory.aclose,
            emotion.aclose,
            preferences_redis.aclose,
        ],
    )


def _build_vision(redis_client: AsyncRedis, llm_settings: Any) -> Any:
    """The handler's image step; whether the answering model sees images is decided (and said) once."""
    from workers.vision.capability import answering_model, model_sees_images
    from workers.vision.intake import Vision
    from workers.vision.settings import VisionSettings

    settings = VisionSettings()
    sees = model_sees_images(settings, llm_settings)
    model = answering_model(llm_settings)
    if not settings.enabled:
        log.info("vision is off (PATCHBAY_VISION=false): images get a note, their text is answered")
    elif sees:
        log.info("vision: %s sees images; they are sent scaled to at most %d px", model, settings.max_side)
    else:
        log.info("vision: %s reads text only; images get a note, their text is answered", model)
    return Vision(settings, sees=sees, redis=redis_client)


async def _warm_up(base_llm: Any, memory: Any, llm_settings: Any) -> None:
    """Pay the one-time costs before the worker says it is ready, not on its first message.

    litellm's import (seconds on a fresh start), the first link's model when it runs in process (the
    offline SmolLM2 when nothing else is configured; as a last resort behind remote providers it
    stays lazy: most workers never need it), and the embedder's first pass. The Router of the
    provider chain is built by the ``llm_resilience`` patch as the stack is (``patches.llm_resilience``).
    """
    from workers.llm.client import LiteLLMClient
    from workers.llm.litellm_loader import load_litellm, warm_litellm
    from workers.llm.local import LOCAL_PROVIDER, SmolLM2

    if isinstance(base_llm, LiteLLMClient):
        await asyncio.to_thread(load_litellm)
        await warm_litellm()
        first = llm_settings.providers[0].model if llm_settings.providers else base_llm.model
        if first.startswith(f"{LOCAL_PROVIDER}/"):
            try:
                await asyncio.to_thread(SmolLM2.shared().load)
            except Exception as exc:  # the call reports it again, and the chain falls back; start-up goes on
                log.warning("local model warm-up failed: %r", exc)
    try:
        await memory.embedder.embed(["warm up"])
    except Exception as exc:  # the embedder reports its own failures at recall time; start-up goes on
        log.warning("embedder warm-up failed: %r", exc)
