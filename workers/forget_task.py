"""The ``patchbay.forget_user`` Celery task: forget one user on behalf of the admin API.

The admin API (``gateway.shared.forgetting.request_forget``) waits for the result this task pushes
to ``patchbay:forget:result:<request id>``; an error is pushed as ``{"error": ...}`` so the API can
say why instead of timing out.
"""

from __future__ import annotations

import json
import logging

from redis.asyncio import Redis

from gateway.shared.forgetting import FORGET_TASK_NAME, RESULT_TTL_S
from gateway.shared.keys import forget_result
from gateway.shared.redis_urls import redis_py_url
from gateway.shared.settings import Settings
from workers.app import app
from workers.forget import forget_user
from workers.runtime import run_coroutine

__all__ = ["forget_user_task"]

log = logging.getLogger(__name__)


async def _forget_and_report(user_key: str, request_id: str) -> str:
    settings = Settings()
    try:
        result: dict[str, object] = (await forget_user(settings, user_key)).to_json()
    except Exception as exc:
        log.exception("forgetting %s failed", user_key)
        result = {"error": f"{type(exc).__name__}: {exc}"}
    async with Redis.from_url(redis_py_url(settings.effective_redis_url)) as redis:
        key = forget_result(request_id)
        async with redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, json.dumps(result))
            pipe.expire(key, RESULT_TTL_S)
            await pipe.execute()
    return "forgotten" if "error" not in result else "failed"


@app.task(name=FORGET_TASK_NAME, acks_late=True)
def forget_user_task(user_key: str, request_id: str) -> str:
    return run_coroutine(_forget_and_report(user_key, request_id))
