"""The reaper: puts back on the queue what the broker lost, from every worker, coordinated through Redis.

Each worker runs one, every ``interval_s``. ``Ledger.reap`` is one atomic script that picks the
unfinished messages nobody holds whose task has left the queue, and moves each one's next check
forward, so reapers on many workers never dispatch the same message twice in one round; a task
dispatched twice anyway is harmless (the second finds the message claimed or done).
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import Counter

from gateway.shared.infra import is_infrastructure_error
from gateway.shared.ledger import Ledger
from gateway.shared.queue import QUEUE, TASK_NAME

__all__ = ["REDISPATCHED", "Reaper"]

log = logging.getLogger(__name__)

REDISPATCHED = Counter("patchbay_ledger_redispatched_total", "messages the reaper put back on the queue")


class Reaper:
    def __init__(self, ledger: Ledger, *, interval_s: float = 1.0) -> None:
        self.ledger = ledger
        self.interval_s = interval_s
        self._outage = False

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_infrastructure_error(exc):
                    log.exception("reaper round failed; next round in %.1fs", self.interval_s)
                elif not self._outage:
                    log.warning("reaper: Redis unavailable (%r); waiting for it", exc)
                self._outage = True

    async def round(self) -> int:
        due = await self.ledger.reap()
        if self._outage:
            log.info("reaper: Redis is back")
            self._outage = False
        if due:
            await asyncio.to_thread(_dispatch, due)
            REDISPATCHED.inc(len(due))
            log.warning(
                "reaper: dispatched again %d message(s) nobody holds: %s", len(due), ", ".join(k for k, _ in due[:5])
            )
        return len(due)


def _dispatch(due: list[tuple[str, int]]) -> None:
    from workers.app import app  # the worker's own Celery app: already loaded in this process

    for message_key, dispatch in due:
        app.send_task(TASK_NAME, args=[message_key, dispatch], queue=QUEUE)
