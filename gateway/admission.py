"""Admission: the one door every inbound message passes before the queue.

validate (the adapter built a typed Envelope) → guard (size, block list, abuse, rate limits) →
dedupe on (platform, bot, conversation, message id) and take the conversation's next sequence
number, in one Redis round trip → enqueue one JSON task → record the decision for analytics.
Every message gets a recorded decision; none is dropped silently. A Redis that is full (its memory
cap, ``noeviction``) refuses the writes: the answer is ``busy`` with a "try again" notice, and nothing
is half-queued.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from celery import Celery
from redis.asyncio import Redis
from redis.exceptions import OutOfMemoryError, ResponseError

from adapters.base import BUSY_NOTICE, Admission, AdmitResult
from gateway.shared.envelope import Envelope
from gateway.shared.events import emit_event
from gateway.shared.keys import DONE_TTL_S, message_keys
from gateway.shared.queue import QUEUE, TASK_NAME

__all__ = ["Admitter", "Guard", "GuardVerdict"]

log = logging.getLogger(__name__)

# SET seen NX, and only for a first sighting take the next sequence number of the conversation.
_DEDUPE_AND_SEQUENCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  local seq = redis.call('INCR', KEYS[2])
  redis.call('EXPIRE', KEYS[2], ARGV[1])
  return seq
end
return 0
"""


class GuardVerdict(Protocol):
    @property
    def action(self) -> str: ...  # "allow" | "rate_limited" | "blocked" | "rejected"

    @property
    def reason(self) -> str: ...

    @property
    def notice(self) -> str | None: ...


class Guard(Protocol):
    async def check(self, envelope: Envelope) -> GuardVerdict: ...


def _redis_full(exc: BaseException | None) -> bool:
    """Redis' answer to a write over ``maxmemory`` (redis-py's OutOfMemoryError, possibly wrapped by kombu)."""
    while exc is not None:
        if isinstance(exc, OutOfMemoryError) or "used memory > 'maxmemory'" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


_ACTIONS = {
    "rate_limited": Admission.RATE_LIMITED,
    "blocked": Admission.BLOCKED,
    "rejected": Admission.REJECTED,
}


class Pressure(Protocol):
    @property
    def full(self) -> bool: ...


class Admitter:
    def __init__(
        self, redis: Redis, celery: Celery, guard: Guard | None = None, pressure: Pressure | None = None
    ) -> None:
        self.redis = redis
        self.celery = celery
        self.guard = guard
        self.pressure = pressure  # Redis near its memory cap: refuse new work, leave room to finish the rest
        self._dedupe = redis.register_script(_DEDUPE_AND_SEQUENCE)

    async def admit(self, envelope: Envelope) -> AdmitResult:
        if self.pressure is not None and self.pressure.full:
            log.warning("busy key=%s: Redis is near its memory cap, nothing queued", envelope.dedupe_key)
            return AdmitResult(Admission.BUSY, "redis near its memory cap: try again", BUSY_NOTICE)
        try:
            return await self._admit(envelope)
        except ResponseError as exc:
            if not _redis_full(exc):
                raise
            log.error("busy key=%s: Redis is full (maxmemory), nothing queued", envelope.dedupe_key)
            return AdmitResult(Admission.BUSY, "redis full: try again", BUSY_NOTICE)

    async def _admit(self, envelope: Envelope) -> AdmitResult:
        ts_ingress = envelope.received_at or time.time()
        if self.guard is not None:
            verdict = await self.guard.check(envelope)
            if verdict.action != "allow":
                decision = _ACTIONS.get(verdict.action, Admission.REJECTED)
                log.info("refused key=%s decision=%s reason=%s", envelope.dedupe_key, decision, verdict.reason)
                await self._record(envelope, decision, verdict.reason, ts_ingress, None)
                return AdmitResult(decision, verdict.reason, verdict.notice)
        keys = message_keys(envelope.dedupe_key, envelope.conversation_key)
        seq = int(await self._dedupe(keys=[keys.seen, keys.seq], args=[DONE_TTL_S]))
        if seq == 0:
            log.info("duplicate key=%s", envelope.dedupe_key)
            await self._record(envelope, Admission.DUPLICATE, "already received", ts_ingress, None)
            return AdmitResult(Admission.DUPLICATE, "already received")
        try:
            await asyncio.to_thread(self._enqueue, envelope.to_json(), seq)
        except Exception as exc:
            # Not queued: forget that we saw it, so the platform's own retry (or the user's) gets through.
            await self.redis.delete(keys.seen)
            if _redis_full(exc):
                log.error("busy key=%s: Redis is full (maxmemory), nothing queued", envelope.dedupe_key)
                return AdmitResult(Admission.BUSY, "redis full: try again", BUSY_NOTICE)
            log.error("enqueue failed key=%s error=%r", envelope.dedupe_key, exc)
            await self._record(envelope, Admission.REJECTED, f"queue unavailable: {exc}", ts_ingress, None)
            return AdmitResult(Admission.REJECTED, "the message queue is unavailable; please retry")
        log.info("queued key=%s seq=%d", envelope.dedupe_key, seq)
        await self._record(envelope, Admission.QUEUED, "", ts_ingress, time.time())
        return AdmitResult(Admission.QUEUED)

    def _enqueue(self, payload: dict[str, Any], seq: int) -> None:
        self.celery.send_task(TASK_NAME, args=[payload], kwargs={"seq": seq}, queue=QUEUE)

    async def _record(
        self, envelope: Envelope, decision: Admission, reason: str, ts_ingress: float, ts_enqueue: float | None
    ) -> None:
        event = {
            "kind": "message",
            "key": envelope.dedupe_key,
            "platform": str(envelope.platform),
            "bot_id": envelope.bot_id,
            "conversation_id": envelope.conversation_id,
            "user_id": envelope.user_key,
            "decision": str(decision),
            "reason": reason,
            "ts_ingress": ts_ingress,
            "ts_enqueue": ts_enqueue,
            "text_chars": len(envelope.text),
            "attachments": len(envelope.attachments),
            "is_direct": envelope.is_direct,
        }
        await emit_event(self.redis, event)
