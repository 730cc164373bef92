"""Admission: the one door every inbound message passes before the queue.

validate (the adapter built a typed Envelope) → guard (size, block list, abuse, rate limits) →
record it in the ledger (dedupe, the conversation's next sequence number, the envelope: one Redis
script) → put a pointer to it on the queue → record the decision for analytics. Every message gets
a recorded decision; none is dropped silently.

The ledger record is the commitment: once it is written the message will be answered, even if the
enqueue right after it fails (the workers' reaper dispatches recorded messages nobody took). When
Redis cannot be reached the message is not confirmed: the caller gets ``UNAVAILABLE`` (webhooks and
the web chat answer with a status that makes the sender retry), or, for a platform that cannot
redeliver, the envelope goes to the gateway's durable spool (``spool=True``). A Redis that is full
(its memory cap, ``noeviction``), or close to it, refuses new work: the answer is ``busy`` with a
"try again" notice, and nothing is half-queued.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Protocol

from celery import Celery
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import OutOfMemoryError

from adapters.base import BUSY_NOTICE, Admission, AdmitResult
from gateway.shared.envelope import Envelope
from gateway.shared.events import emit_event
from gateway.shared.infra import is_infrastructure_error
from gateway.shared.ledger import Ledger
from gateway.shared.queue import QUEUE, TASK_NAME
from gateway.spool import Spool

__all__ = ["UNAVAILABLE_REASON", "Admitter", "Guard", "GuardVerdict"]

log = logging.getLogger(__name__)

UNAVAILABLE_REASON = "the message queue is unavailable; please retry"
UNAVAILABLE = Counter(
    "patchbay_admission_unavailable_total", "messages refused because Redis could not be reached", ["platform"]
)


class GuardVerdict(Protocol):
    @property
    def action(self) -> str: ...  # "allow" | "rate_limited" | "blocked" | "rejected"

    @property
    def reason(self) -> str: ...

    @property
    def notice(self) -> str | None: ...


class Guard(Protocol):
    async def check(self, envelope: Envelope) -> GuardVerdict: ...


class Pressure(Protocol):
    @property
    def full(self) -> bool: ...


def _redis_full(exc: BaseException | None) -> bool:
    """Redis' answer to a write over ``maxmemory`` (redis-py's OutOfMemoryError, possibly wrapped by kombu)."""
    while exc is not None:
        if isinstance(exc, OutOfMemoryError) or "used memory > 'maxmemory'" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


_BUSY = AdmitResult(Admission.BUSY, "redis near its memory cap: try again", BUSY_NOTICE)


_ACTIONS = {
    "rate_limited": Admission.RATE_LIMITED,
    "blocked": Admission.BLOCKED,
    "rejected": Admission.REJECTED,
}


class Admitter:
    def __init__(
        self,
        redis: Redis,
        celery: Celery,
        guard: Guard | None = None,
        *,
        ledger: Ledger | None = None,
        spool: Spool | None = None,
        pressure: Pressure | None = None,
    ) -> None:
        self.redis = redis
        self.celery = celery
        self.guard = guard
        self.ledger = ledger or Ledger(redis, queue=QUEUE)
        self.spool = spool
        self.pressure = pressure  # Redis near its memory cap: refuse new work, leave room to finish the rest

    async def admit(self, envelope: Envelope, *, spool: bool = False) -> AdmitResult:
        """Admit one message; with ``spool``, an outage puts it in the durable spool instead of refusing it."""
        if self.pressure is not None and self.pressure.full:
            log.warning("busy key=%s: Redis is near its memory cap, nothing queued", envelope.dedupe_key)
            return _BUSY
        spooling = spool and self.spool is not None
        if spooling and self.spool is not None and self.spool.depth:
            await self.spool.put(envelope, "queued behind spooled messages")  # keeps the conversation's order
            return AdmitResult(Admission.QUEUED, "spooled")
        try:
            return await self.admit_now(envelope)
        except Exception as exc:
            if _redis_full(exc):
                log.error("busy key=%s: Redis is full (maxmemory), nothing queued", envelope.dedupe_key)
                return _BUSY
            if not is_infrastructure_error(exc):
                raise
            if spooling and self.spool is not None:
                await self.spool.put(envelope, f"redis unavailable: {exc!r}")
                return AdmitResult(Admission.QUEUED, "spooled")
            UNAVAILABLE.labels(str(envelope.platform)).inc()
            log.error(
                "unavailable key=%s: Redis unreachable (%r); the sender is told to retry", envelope.dedupe_key, exc
            )
            return AdmitResult(Admission.UNAVAILABLE, UNAVAILABLE_REASON)

    async def admit_now(self, envelope: Envelope) -> AdmitResult:
        """Admit against Redis; raises the infrastructure error when Redis cannot be reached."""
        ts_ingress = envelope.received_at or time.time()
        if self.guard is not None:
            verdict = await self.guard.check(envelope)
            if verdict.action != "allow":
                decision = _ACTIONS.get(verdict.action, Admission.REJECTED)
                log.info("refused key=%s decision=%s reason=%s", envelope.dedupe_key, decision, verdict.reason)
                await self._record(envelope, decision, verdict.reason, ts_ingress, None)
                return AdmitResult(decision, verdict.reason, verdict.notice)
        key = envelope.dedupe_key
        admitted = await self.ledger.admit(key, envelope.conversation_key, json.dumps(envelope.to_json()))
        if admitted is None:
            log.info("duplicate key=%s", key)
            await self._record(envelope, Admission.DUPLICATE, "already received", ts_ingress, None)
            return AdmitResult(Admission.DUPLICATE, "already received")
        try:
            await asyncio.to_thread(self._enqueue, key, admitted.dispatch)
        except Exception as exc:
            # Recorded is enough: the reaper dispatches a recorded message that no worker took.
            log.warning("enqueue failed key=%s (%r): recorded in the ledger, the reaper dispatches it", key, exc)
        log.info("queued key=%s seq=%d", key, admitted.seq)
        await self._record(envelope, Admission.QUEUED, "", ts_ingress, time.time())
        return AdmitResult(Admission.QUEUED)

    def _enqueue(self, message_key: str, dispatch: int) -> None:
        self.celery.send_task(TASK_NAME, args=[message_key, dispatch], queue=QUEUE)

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
