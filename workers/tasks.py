"""The Celery task: take a message key off the queue and run it through this process's event loop.

The task carries a pointer (the message key and its dispatch number), not the envelope: the ledger
record is the message. A task queued by a version before the ledger carries the envelope itself; it
is recorded in the ledger first, so an upgrade with a full queue loses nothing.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from celery import Task

from gateway.shared.envelope import EnvelopeError, parse_envelope
from workers.app import TASK_NAME, app
from workers.pipeline import Outcome, worker_context
from workers.runtime import run_coroutine

__all__ = ["handle_message"]

log = logging.getLogger(__name__)


async def _process(message_key: str, dispatch: int) -> Outcome:
    # worker_context() is created on the loop thread, so every pool thread shares one context.
    return await worker_context().process(message_key, dispatch)


async def _adopt_legacy(payload: dict[str, Any]) -> tuple[str, int] | None:
    try:
        envelope = parse_envelope(payload)
    except EnvelopeError as exc:
        log.error("invalid legacy task dropped: %s", exc)
        return None
    ledger = worker_context().ledger
    admitted = await ledger.admit(envelope.dedupe_key, envelope.conversation_key, json.dumps(envelope.to_json()))
    return (envelope.dedupe_key, admitted.dispatch) if admitted else None


@app.task(name=TASK_NAME, bind=True)
def handle_message(self: Task, message: str | dict[str, Any], dispatch: int = 0, **legacy: Any) -> str:
    if isinstance(message, dict):
        adopted = run_coroutine(_adopt_legacy(message))
        if adopted is None:
            return Outcome.DUPLICATE.value
        message, dispatch = adopted
    return run_coroutine(_process(message, dispatch)).value
