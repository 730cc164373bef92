"""The Celery task: take an envelope off the queue and run it through this process's event loop."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from workers.app import TASK_NAME, app
from workers.pipeline import Outcome, RetryLater, worker_context
from workers.runtime import run_coroutine

__all__ = ["handle_message"]

log = logging.getLogger(__name__)


async def _process(payload: dict[str, Any], seq: int, attempt: int) -> Outcome:
    # worker_context() is created on the loop thread, so every pool thread shares one context.
    return await worker_context().process(payload, seq, attempt)


@app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=5)
def handle_message(self: Task, envelope: dict[str, Any], seq: int = 0) -> str:
    try:
        return run_coroutine(_process(envelope, seq, self.request.retries)).value
    except RetryLater as exc:
        log.warning("delivery deferred key=%s countdown=%.1fs", envelope.get("message_id"), exc.countdown)
        raise self.retry(countdown=exc.countdown) from exc
