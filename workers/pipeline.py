"""One message through a worker: claim → wait for its turn → stack → egress → done.

``WorkerContext`` holds what a worker process builds once (Redis, ledger, stack, egress) on its
single event loop; ``process`` is the whole life of one message and is the only place that
decides between "replied", "recorded why not" and "retry later".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import asdict
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis

from gateway.shared.envelope import Envelope, EnvelopeError, Reply, parse_envelope
from gateway.shared.events import emit_event
from gateway.shared.keys import WORKER_HEARTBEAT_PREFIX, message_keys
from gateway.shared.redis_urls import redis_py_url
from gateway.shared.settings import Settings
from patches.context import call_context, current_trace
from patches.layer import OUTSIDE_ROLLOUT
from workers.egress import DeliveryFailed, Egress
from workers.ledger import Claim, Ledger
from workers.report import MessageReport, message_report
from workers.stack import Stack, build_stack

__all__ = ["Outcome", "WorkerContext", "worker_context"]

log = logging.getLogger(__name__)

INTERNAL_ERROR_REPLY = "Sorry, something went wrong on my side while answering. Please try again."
HEARTBEAT_TTL_S = 15


class Outcome(StrEnum):
    REPLIED = "replied"
    DUPLICATE = "duplicate"  # already done, or being handled by another live worker
    INVALID = "invalid"
    UNDELIVERABLE = "undeliverable"  # the platform refused the reply for good; recorded
    RETRY = "retry"  # could not send now; the task will be retried


class RetryLater(Exception):
    def __init__(self, countdown: float) -> None:
        super().__init__(f"retry in {countdown:.1f}s")
        self.countdown = countdown


class WorkerContext:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.redis = Redis.from_url(redis_py_url(settings.effective_redis_url), max_connections=512)
        lease = max(2.0, min(30.0, settings.visibility_timeout_s / 3))
        self.ledger = Ledger(self.redis, lease_s=lease, order_wait_s=max(30.0, settings.reply_timeout_s * 2))
        self.egress = Egress(self.redis, settings.effective_redis_url)
        self.stack: Stack | None = None
        self._stack_lock = asyncio.Lock()
        self._heartbeat: asyncio.Task[None] | None = None

    async def ensure_stack(self) -> Stack:
        if self.stack is None:
            async with self._stack_lock:
                if self.stack is None:
                    self.stack = await build_stack(self.settings)
                    self._heartbeat = asyncio.create_task(self._beat(), name="worker-heartbeat")
                    log.info("worker ready id=%s", self.worker_id)
        return self.stack

    async def _beat(self) -> None:
        key = WORKER_HEARTBEAT_PREFIX + self.worker_id
        while True:
            try:
                await self.redis.set(key, json.dumps({"ts": time.time(), "pid": os.getpid()}), ex=HEARTBEAT_TTL_S)
            except Exception as exc:
                log.warning("worker heartbeat failed: %r", exc)
            await asyncio.sleep(HEARTBEAT_TTL_S / 3)

    async def process(self, payload: dict[str, Any], seq: int, attempt: int) -> Outcome:
        try:
            envelope = parse_envelope(payload)
        except EnvelopeError as exc:
            # The gateway validates before enqueuing, so this is a producer bug or a forged task: record, drop.
            log.error("invalid envelope dropped: %s", exc)
            await self._emit({"kind": "reply", "key": str(payload.get("message_id")), "error": str(exc)})
            return Outcome.INVALID
        stack = await self.ensure_stack()
        keys = message_keys(envelope.dedupe_key, envelope.conversation_key)
        token = f"{self.worker_id}:{uuid.uuid4().hex[:8]}"
        claim = await self.ledger.begin(keys, token)
        if claim is not Claim.CLAIMED:
            log.info("skip key=%s claim=%s (exactly one reply)", envelope.dedupe_key, claim)
            return Outcome.DUPLICATE
        lease = asyncio.create_task(self.ledger.keep_alive(keys, token))
        try:
            waited = time.perf_counter()
            await self.ledger.wait_turn(keys, seq)
            waited = time.perf_counter() - waited
            return await self._handle(envelope, stack, keys, token, seq, attempt, waited)
        finally:
            lease.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lease

    async def _handle(
        self, envelope: Envelope, stack: Stack, keys: Any, token: str, seq: int, attempt: int, order_wait_s: float
    ) -> Outcome:
        with (
            message_report(envelope.dedupe_key) as report,
            call_context(
                user_id=envelope.user_key, conversation_key=envelope.conversation_key, platform=envelope.platform
            ),
        ):
            try:
                reply = await stack.handler.handle(envelope)
            except Exception as exc:  # a bug must not cost the user their answer, nor stall the conversation
                log.exception("handler failed key=%s: answering with an apology", envelope.dedupe_key)
                report.error = repr(exc)
                reply = Reply.answering(envelope, INTERNAL_ERROR_REPLY, reason="internal_error")
            try:
                report.reply_ids = await self.egress.deliver(reply)
            except DeliveryFailed as exc:
                if not exc.permanent and attempt < 5:
                    await self.ledger.release(keys, token)
                    raise RetryLater(exc.retry_after or 2.0 * 2**attempt) from exc
                report.error = f"undeliverable: {exc}"
                log.error("reply undeliverable key=%s error=%s", envelope.dedupe_key, exc)
                await self.ledger.finish(keys, token, seq, "undeliverable")
                await self._emit_reply(envelope, reply, report, current_trace())
                return Outcome.UNDELIVERABLE
            report.ts_egress = time.time()
            await self.ledger.finish(keys, token, seq, "replied")
            await self._emit_reply(envelope, reply, report, current_trace())
            log.info(
                "replied key=%s latency_ms=%.0f queue_ms=%.0f order_wait_ms=%.0f handle_ms=%.0f provider=%s reason=%s",
                envelope.dedupe_key,
                (report.ts_egress - (envelope.received_at or report.ts_worker_start)) * 1000,
                (report.ts_worker_start - order_wait_s - (envelope.received_at or report.ts_worker_start)) * 1000,
                order_wait_s * 1000,
                (report.ts_egress - report.ts_worker_start) * 1000,
                report.llm_provider or "-",
                reply.reason or "-",
            )
            return Outcome.REPLIED

    async def _emit_reply(self, envelope: Envelope, reply: Reply, report: MessageReport, trace: list[Any]) -> None:
        event = {
            "kind": "reply",
            "platform": str(envelope.platform),
            "conversation_id": envelope.conversation_id,
            "user_id": envelope.user_key,
            "patches": [
                {"patch": t.patch, "method": t.method, "outcome": t.outcome, "reason": t.reason} for t in trace
            ],
            # A rollout's two groups: users inside it, and the control group it skipped for being outside.
            "variants": {
                t.patch: t.reason != OUTSIDE_ROLLOUT
                for t in trace
                if t.outcome != "skipped" or t.reason == OUTSIDE_ROLLOUT
            },
            **{k: v for k, v in asdict(report).items() if k != "extra"},
        }
        if reply.reason and not event.get("degraded"):
            event["degraded"] = reply.reason
        await self._emit(event)

    async def _emit(self, event: dict[str, Any]) -> None:
        await emit_event(self.redis, event)

    async def aclose(self) -> None:
        if self._heartbeat:
            self._heartbeat.cancel()
        if self.stack:
            await self.stack.aclose()
        await self.egress.aclose()
        await self.redis.aclose()


_context: WorkerContext | None = None


def worker_context() -> WorkerContext:
    global _context
    if _context is None:
        _context = WorkerContext(Settings())
    return _context
