"""Forgetting a user, as both sides agree on it: the task's name, its result, and how the edge asks.

The data to forget is the workers' (memory in SQL, the LLM cache, the emotional state, the voice
choice, the web chat's stored replies, Redis' AOF), so a worker does it: the admin API sends the
``patchbay.forget_user`` task by name, exactly as admission sends messages, and waits for the result
the worker pushes to ``patchbay:forget:result:<request id>``. The gateway never imports worker code.
``patchbay memory forget`` runs the same worker function in its own process.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from celery import Celery
from redis.asyncio import Redis

from gateway.shared.keys import forget_result
from gateway.shared.queue import QUEUE

__all__ = ["FORGET_TASK_NAME", "RESULT_TTL_S", "Forgotten", "request_forget"]

FORGET_TASK_NAME = "patchbay.forget_user"
RESULT_TTL_S = 3600


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What forgetting one user deleted, everywhere."""

    user_id: str
    memory_turns: int
    emotion_state: bool
    voice_preference: bool
    webchat_replies: int
    llm_cache_entries: int
    redis_persistence: str  # "rewritten" (AOF rewritten, RDB saved), "none" (no persistence) or why not

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Forgotten:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


async def request_forget(celery: Celery, redis: Redis, user_key: str, timeout_s: float) -> Forgotten | None:
    """Have a worker forget ``user_key``; its result, or None when no worker finished within ``timeout_s``.

    None does not mean lost: the task stays queued and a worker will run it when one is up.
    """
    request_id = uuid.uuid4().hex
    await asyncio.to_thread(celery.send_task, FORGET_TASK_NAME, args=[user_key, request_id], queue=QUEUE)
    answer = await redis.blpop([forget_result(request_id)], timeout=timeout_s)
    if answer is None:
        return None
    _, raw = answer
    data = json.loads(raw)
    if "error" in data:
        raise RuntimeError(f"the worker could not forget {user_key}: {data['error']}")
    return Forgotten.from_json(data)
