"""One message through a worker: claim → wait for its turn → stack → commit → egress → done.

``WorkerContext`` holds what a worker process builds once (Redis, ledger, stack, egress, reaper) on
its single event loop (egress, and the ``finish`` that records a reply sent, run on a loop of their own:
``workers.egress_loop``); ``process`` is the whole life of one message and the only place that decides
between "replied", "recorded why not" and "try again later".

The ledger (``gateway.shared.ledger``), not the broker, guarantees the answer: a task carries only
the message key, the envelope is read from the ledger record, and whatever this worker cannot finish
(it dies, Redis goes away, the platform asks us to wait) stays open in the ledger, where the reaper
finds it. Failures of infrastructure (Redis, the database) therefore never become an apology: the
message is released and answered once the infrastructure is back.
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
from dataclasses import asdict, dataclass
from enum import StrEnum

from redis.asyncio import Redis

from gateway.shared.envelope import Envelope, EnvelopeError, Reply, parse_envelope
from gateway.shared.events import emit_event
from gateway.shared.infra import is_infrastructure_error, retry_infrastructure
from gateway.shared.keys import WORKER_HEARTBEAT_PREFIX
from gateway.shared.ledger import Begun, Claim, Commit, Ledger
from gateway.shared.queue import QUEUE
from gateway.shared.redis_urls import redis_client
from gateway.shared.settings import Settings
from patches.context import call_context, current_trace
from patches.layer import OUTSIDE_ROLLOUT
from workers.egress import DeliveryFailed
from workers.egress_loop import EgressLoop, FinishAfterSend, RemoteLive
from workers.reaper import Reaper
from workers.report import MessageReport, message_report
from workers.stack import Stack, build_stack
from workers.streaming import StreamingSettings, live_for

__all__ = ["Outcome", "WorkerContext", "worker_context"]

log = logging.getLogger(__name__)

INTERNAL_ERROR_REPLY = "Sorry, something went wrong on my side while answering. Please try again."
EXHAUSTED_REPLY = "Sorry, I could not answer this message: it failed every time I tried. Please rephrase or try later."
HEARTBEAT_TTL_S = 15
MAX_DELIVERY_RETRIES = 5
REDIS_COMMAND_TIMEOUT_S = 10.0
MAX_INFRASTRUCTURE_RETRIES = 20  # about ten minutes of backoff before answering with an apology


class Outcome(StrEnum):
    REPLIED = "replied"
    DUPLICATE = "duplicate"  # already done, or being handled by another live worker
    INVALID = "invalid"
    UNDELIVERABLE = "undeliverable"  # the platform refused the reply for good; recorded
    ABANDONED = "abandoned"  # it killed its workers max_attempts times; answered with an apology
    RETRY = "retry"  # released: the reaper dispatches it again later
    DEFERRED = "deferred"  # Redis was unreachable: the ledger keeps it, the reaper brings it back


@dataclass(slots=True)
class _Message:
    key: str
    token: str
    begun: Begun
    envelope: Envelope

    @property
    def conversation_key(self) -> str:
        return self.begun.conversation_key or self.envelope.conversation_key


class WorkerContext:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        # No command of this client blocks on the server, so none may hang: a reply that never comes (a
        # connection left half-open by a Redis restart) is a TimeoutError the infrastructure retries handle,
        # not a message held, its lease renewed, for ever.
        self.redis: Redis = redis_client(
            settings.effective_redis_url, max_connections=512, socket_timeout=REDIS_COMMAND_TIMEOUT_S
        )
        self.ledger = Ledger(
            self.redis, lease_s=settings.claim_lease_s, max_attempts=settings.max_attempts, queue=QUEUE
        )
        self.egress = EgressLoop(settings)  # sends and records them sent off the busy main loop
        self.reaper = Reaper(self.ledger, interval_s=settings.reaper_interval_s)
        self.streaming = StreamingSettings()
        self.stack: Stack | None = None
        # Messages of this process waiting for their turn, by conversation: a finish here wakes them at once.
        self._turn_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._stack_lock = asyncio.Lock()
        self._background: list[asyncio.Task[None]] = []

    async def ensure_stack(self) -> Stack:
        if self.stack is None:
            async with self._stack_lock:
                if self.stack is None:
                    self.stack = await build_stack(self.settings)
                    self._background = [
                        asyncio.create_task(self._beat(), name="worker-heartbeat"),
                        asyncio.create_task(self.reaper.run(), name="ledger-reaper"),
                    ]
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

    async def process(self, message_key: str, dispatch: int) -> Outcome:
        stack = await self.ensure_stack()
        token = f"{self.worker_id}:{uuid.uuid4().hex[:8]}"
        try:
            begun = await retry_infrastructure(lambda: self.ledger.begin_turn(message_key, token, dispatch), "claim")
        except Exception as exc:
            if not is_infrastructure_error(exc):
                raise
            log.warning("deferred key=%s: Redis unreachable at claim (%r); the reaper brings it back", message_key, exc)
            return Outcome.DEFERRED
        if begun.claim in (Claim.BUSY, Claim.DONE):
            # Never destroy the only copy: a live holder answers it, and the reaper acts if that holder dies.
            log.info("skip key=%s claim=%s dispatch=%d (exactly one reply)", message_key, begun.claim, dispatch)
            return Outcome.DUPLICATE
        try:
            envelope = parse_envelope(json.loads(begun.envelope_json))
        except (EnvelopeError, ValueError) as exc:
            # The gateway validates before recording, so this is a producer bug or a forged record: record, drop.
            log.error("invalid envelope dropped key=%s: %s", message_key, exc)
            await self._finish_quietly(message_key, begun.conversation_key, token, "invalid")
            await emit_event(self.redis, {"kind": "reply", "key": message_key, "error": f"invalid envelope: {exc}"})
            return Outcome.INVALID
        message = _Message(message_key, token, begun, envelope)
        lease = asyncio.create_task(self._keep_lease(message), name=f"lease-{message_key}")
        try:
            return await self._run(message, stack)
        except Exception as exc:
            if not is_infrastructure_error(exc):
                raise
            log.warning("deferred key=%s: infrastructure failed (%r); the reaper brings it back", message_key, exc)
            return Outcome.DEFERRED
        finally:
            lease.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lease

    async def _keep_lease(self, message: _Message) -> None:
        """Renew the claim until cancelled; losing it only wastes work (``commit`` stops a second reply)."""
        interval = self.ledger.lease_s / 4
        while True:
            await asyncio.sleep(interval)
            try:
                if not await self.ledger.renew(message.key, message.token):
                    log.warning("lease lost key=%s: another worker may answer it; ours will not be sent", message.key)
                    return
            except Exception as exc:  # Redis away: keep trying, the work goes on meanwhile
                log.warning("lease renewal failed key=%s error=%r", message.key, exc)

    async def _run(self, message: _Message, stack: Stack) -> Outcome:
        waited = time.perf_counter()
        attempt = await self._wait_turn(message)
        waited = time.perf_counter() - waited
        # "typing…" from here on, and the answer as it is written (the handler finds it: current_live). An
        # earlier attempt's streamed message is resumed: the answer, or the apology, finishes that message.
        live = await self.egress.open_live(message.key, message.token, message.envelope, self.streaming)
        try:
            if self.ledger.exhausted(attempt):
                return await self._abandon(message, attempt - 1, live)
            if message.begun.previous_state == "sending":
                log.warning("key=%s: the previous worker died while sending; sending again", message.key)
            return await self._handle(message, stack, waited, live)
        finally:
            if live is not None:
                await live.abort()  # stops typing and updates; nothing after finish

    async def _handle(self, message: _Message, stack: Stack, waited: float, live: RemoteLive | None) -> Outcome:
        with (
            message_report(message.key) as report,
            call_context(
                user_id=message.envelope.user_key,
                conversation_key=message.envelope.conversation_key,
                platform=message.envelope.platform,
            ),
            live_for(live),
        ):
            try:
                reply = await stack.handler.handle(message.envelope)
            except Exception as exc:
                if is_infrastructure_error(exc) and message.begun.retries < MAX_INFRASTRUCTURE_RETRIES:
                    return await self._retry(message, exc, "infrastructure")
                # A bug must not cost the user their answer, nor stall the conversation.
                log.exception("handler failed key=%s: answering with an apology", message.key)
                report.error = repr(exc)
                reply = Reply.answering(message.envelope, INTERNAL_ERROR_REPLY, reason="internal_error")
            return await self._deliver(message, reply, report, waited, live)

    async def _wait_turn(self, message: _Message) -> int:
        """Until every earlier message of the conversation is finished (it never gives up on an open one).

        Returns this attempt's number: how many times handling of this message has begun.
        """
        if message.begun.attempt:  # begin_turn found its turn already: no second round trip
            return message.begun.attempt
        delay = 0.005
        while True:
            attempt = await retry_infrastructure(
                lambda: self.ledger.turn(message.key, message.conversation_key, message.begun.seq), "order"
            )
            if attempt:
                return attempt
            await self._until_finished_here(message.conversation_key, delay)
            delay = min(delay * 2, 0.1)

    async def _until_finished_here(self, conversation_key: str, delay: float) -> None:
        """Sleep ``delay``, or less if this process finishes a message of the conversation meanwhile.

        Only a hint to look again: the turn script decides. A predecessor held by another process is
        seen at the next poll, as before.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        waiters = self._turn_waiters.setdefault(conversation_key, [])
        waiters.append(waiter)
        timer = loop.call_later(delay, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            waiters.remove(waiter)
            if not waiters:
                del self._turn_waiters[conversation_key]

    async def _deliver(
        self, message: _Message, reply: Reply, report: MessageReport, waited_s: float, live: RemoteLive | None = None
    ) -> Outcome:
        commit = await retry_infrastructure(lambda: self.ledger.commit(message.key, message.token), "commit")
        if commit is not Commit.OK:
            log.warning("not sending key=%s: %s (another worker answers it)", message.key, commit)
            return Outcome.DUPLICATE
        try:
            # A streamed reply becomes the answer in the same platform message; either way it is sent, and
            # recorded sent, on the egress loop.
            report.reply_ids = await self.egress.deliver(reply, self._finisher(message, "replied"), live=live)
        except DeliveryFailed as exc:
            if not exc.permanent and message.begun.retries < MAX_DELIVERY_RETRIES:
                return await self._retry(message, exc, "delivery", exc.retry_after)
            report.error = f"undeliverable: {exc}"
            log.error("reply undeliverable key=%s error=%s", message.key, exc)
            await self._finish(message, "undeliverable")
            await self._emit_reply(message.envelope, reply, report)
            return Outcome.UNDELIVERABLE
        report.ts_egress = time.time()
        self._log_replied(message, reply, report, waited_s)
        await self._emit_reply(message.envelope, reply, report)
        return Outcome.REPLIED

    async def _retry(self, message: _Message, exc: Exception, what: str, after_s: float | None = None) -> Outcome:
        attempt = message.begun.retries
        delay = after_s if after_s is not None else min(30.0, 2.0 * 2**attempt)
        log.warning("retry key=%s in %.1fs after %s failure (attempt %d): %r", message.key, delay, what, attempt, exc)
        await retry_infrastructure(lambda: self.ledger.release(message.key, message.token, delay), "release")
        return Outcome.RETRY

    async def _abandon(self, message: _Message, attempts: int, live: RemoteLive | None = None) -> Outcome:
        """Its handling began max_attempts times and never finished (its workers died): apologise, record why."""
        log.error("abandoning key=%s after %d attempts: answering with an apology", message.key, attempts)
        reply = Reply.answering(message.envelope, EXHAUSTED_REPLY, reason="abandoned")
        with message_report(message.key) as report:
            report.degraded = "abandoned"
            report.error = f"abandoned after {attempts} attempts that never finished"
            commit = await retry_infrastructure(lambda: self.ledger.commit(message.key, message.token), "commit")
            finished = False
            if commit is Commit.OK:
                with contextlib.suppress(DeliveryFailed):
                    report.reply_ids = await self.egress.deliver(reply, self._finisher(message, "abandoned"), live=live)
                    finished = True
            if not finished:
                await self._finish(message, "abandoned")
            await self._emit_reply(message.envelope, reply, report)
        return Outcome.ABANDONED

    @staticmethod
    def _finisher(message: _Message, outcome: str) -> FinishAfterSend:
        """The ``finish`` the egress loop runs the moment the platform has the reply: nothing in between."""

        async def finish(ledger: Ledger) -> None:
            await ledger.finish(message.key, message.conversation_key, message.token, outcome)

        return finish

    async def _finish(self, message: _Message, outcome: str) -> None:
        # Nothing was sent, or it was sent and recorded already: keep trying for as long as Redis is away.
        await retry_infrastructure(
            lambda: self.ledger.finish(message.key, message.conversation_key, message.token, outcome),
            "finish",
            give_up_after_s=600.0,
        )
        for waiter in self._turn_waiters.get(message.conversation_key, ()):
            _wake(waiter)

    async def _finish_quietly(self, message_key: str, conversation_key: str, token: str, outcome: str) -> None:
        with contextlib.suppress(Exception):
            await self.ledger.finish(message_key, conversation_key, token, outcome)

    def _log_replied(self, message: _Message, reply: Reply, report: MessageReport, waited_s: float) -> None:
        received = message.envelope.received_at or report.ts_worker_start
        assert report.ts_egress is not None
        log.info(
            "replied key=%s latency_ms=%.0f queue_ms=%.0f order_wait_ms=%.0f handle_ms=%.0f provider=%s reason=%s",
            message.key,
            (report.ts_egress - received) * 1000,
            (report.ts_worker_start - waited_s - received) * 1000,
            waited_s * 1000,
            (report.ts_egress - report.ts_worker_start) * 1000,
            report.llm_provider or "-",
            reply.reason or "-",
        )

    async def _emit_reply(self, envelope: Envelope, reply: Reply, report: MessageReport) -> None:
        trace = current_trace()
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
        if not event.get("images"):
            event.pop("images", None)  # only a message with images carries their metadata (docs/vision.md)
        if reply.reason and not event.get("degraded"):
            event["degraded"] = reply.reason
        await emit_event(self.redis, event)

    async def aclose(self) -> None:
        for task in self._background:
            task.cancel()
        if self.stack:
            await self.stack.aclose()
        await self.egress.stop()
        await self.redis.aclose()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


_context: WorkerContext | None = None


def worker_context() -> WorkerContext:
    global _context
    if _context is None:
        _context = WorkerContext(Settings())
    return _context
