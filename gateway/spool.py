"""A small durable spool on the gateway's disk, for messages a platform will never send again.

Discord's gateway socket, Telegram long polling and Slack Socket Mode have no redelivery we can ask
for: once the gateway has the event, confirming it (the next poll offset, the socket ack) is ours to
do. When admission cannot reach Redis, such a message is written here (one file per message,
fsynced, then renamed into place) and admitted, oldest first, when Redis is back; the platform is
confirmed only after the file is on disk. While anything is spooled, new messages for the spool
queue behind it, so the order of a conversation survives the outage.

Webhook platforms (Slack Events API, Telegram webhook) and the web chat never spool: they get a
status that makes the sender retry.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from prometheus_client import Counter, Gauge

from gateway.shared.envelope import Envelope, EnvelopeError, parse_envelope
from gateway.shared.infra import is_infrastructure_error

__all__ = ["SPOOLED", "Spool"]

log = logging.getLogger(__name__)

SPOOLED = Counter("patchbay_gateway_spooled_total", "messages written to the gateway's spool while Redis was away")
DRAINED = Counter("patchbay_gateway_spool_drained_total", "spooled messages admitted once Redis was back")
DEPTH = Gauge("patchbay_gateway_spool_depth", "messages waiting in the gateway's spool")


class Spool:
    def __init__(self, directory: Path, *, retry_s: float = 0.5) -> None:
        self.directory = directory
        self.retry_s = retry_s
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        existing = self._files()
        self._next = (int(existing[-1].stem) + 1) if existing else 1
        self._depth = len(existing)
        DEPTH.set(self._depth)
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        if existing:
            log.warning("spool: %d message(s) left from before; admitting them first", len(existing))

    @property
    def depth(self) -> int:
        return self._depth

    def _files(self) -> list[Path]:
        return sorted(self.directory.glob("*.json"))

    async def put(self, envelope: Envelope, reason: str) -> None:
        """Write one envelope durably; it returns only once the file is on disk."""
        async with self._lock:  # numbering and writing in one order: the drain keeps arrival order
            number = self._next
            self._next += 1
            await asyncio.to_thread(self._write, number, json.dumps(envelope.to_json()))
            self._depth += 1
        DEPTH.set(self._depth)
        SPOOLED.inc()
        log.warning("spooled key=%s depth=%d reason=%s", envelope.dedupe_key, self._depth, reason)
        self._wake.set()

    def _write(self, number: int, payload: str) -> None:
        final = self.directory / f"{number:020d}.json"
        partial = final.with_suffix(".part")
        with open(partial, "w", encoding="utf-8", opener=lambda path, flags: os.open(path, flags, 0o600)) as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, final)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    async def drain(self, admit: Callable[[Envelope], Awaitable[object]]) -> None:
        """Admit spooled messages in order, for ever (run as a task); waits while Redis is away."""
        while True:
            files = await asyncio.to_thread(self._files)
            if not files:
                self._wake.clear()
                await self._wake.wait()
                continue
            for path in files:
                if not await self._admit_file(path, admit):
                    await asyncio.sleep(self.retry_s)
                    break

    async def _admit_file(self, path: Path, admit: Callable[[Envelope], Awaitable[object]]) -> bool:
        try:
            envelope = parse_envelope(json.loads(await asyncio.to_thread(path.read_text, encoding="utf-8")))
        except (OSError, ValueError, EnvelopeError) as exc:
            log.error("spool: unreadable file %s dropped: %r", path.name, exc)
            self._remove(path)
            return True
        try:
            result = await admit(envelope)
        except Exception as exc:
            if is_infrastructure_error(exc):
                return False
            raise
        self._remove(path)
        DRAINED.inc()
        log.info("spool: admitted key=%s result=%s depth=%d", envelope.dedupe_key, result, self._depth)
        return True

    def _remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._depth = max(0, self._depth - 1)
        DEPTH.set(self._depth)
