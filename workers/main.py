"""A worker process: the Celery worker (threads pool) with its stack built before the first message."""

from __future__ import annotations

import logging
import os

from gateway.shared.queue import QUEUE
from gateway.shared.settings import Settings
from workers.app import app
from workers.pipeline import worker_context
from workers.runtime import run_coroutine

__all__ = ["run_worker"]

log = logging.getLogger(__name__)


def run_worker(settings: Settings, *, concurrency: int | None = None, name: str | None = None) -> None:
    from celery.signals import worker_ready

    settings.check()
    if settings.worker_metrics_port is not None:
        # Per-process figures (LLM cache hit rate, provider calls, memory timings) live in the worker; the
        # gateway's /metrics already carries the cluster-wide patch figures through Redis.
        from prometheus_client import start_http_server

        start_http_server(settings.worker_metrics_port, addr=settings.http_host)
        log.info("worker metrics on http://%s:%d/metrics", settings.http_host, settings.worker_metrics_port)

    @worker_ready.connect(weak=False)
    def _warm_up(**_: object) -> None:
        # Build the stack (load the model, open the database) before the first message, not during it.
        try:
            run_coroutine(worker_context().ensure_stack(), timeout=300)
        except Exception:
            log.exception("worker warm-up failed; the stack will be built on the first message")

    # app.start, not app.worker_main: worker_main drops the exit code, and a crashed worker must not exit 0.
    code = app.start(
        argv=[
            "worker",
            "--pool=threads",
            f"--concurrency={concurrency or settings.worker_concurrency}",
            f"--queues={QUEUE}",
            f"--loglevel={settings.log_level}",
            f"--hostname={name or 'patchbay'}-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
    )
    if code:
        raise SystemExit(code)
