"""Process management: the all-in-one embedded run, and the separate gateway and worker processes.

``patchbay run`` = embedded Redis (unless REDIS_URL is set) + N worker processes + the gateway in
this process. Ctrl-C stops the gateway, then the workers, then Redis; children are started with
a parent-death signal so none outlives us even if we are killed.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import uvicorn

from gateway.embedded_redis import EmbeddedRedis, die_with_parent
from gateway.settings import Settings

__all__ = ["configure_logging", "run_embedded", "run_gateway", "run_worker"]

log = logging.getLogger(__name__)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(processName)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "LiteLLM", "litellm", "httpcore", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_gateway(settings: Settings, *, embedded: bool = False) -> None:
    from gateway.app import create_app

    app = create_app(settings, embedded=embedded)
    server = uvicorn.Server(
        uvicorn.Config(app, host=settings.http_host, port=settings.http_port, log_level="warning", lifespan="on")
    )
    # With Python's default SIGINT handler in place, asyncio's runner would cancel the server task on
    # Ctrl-C and cut the shutdown (analytics flush, platform disconnects) short; with ours, it leaves
    # SIGINT to uvicorn, which shuts down gracefully.
    signal.signal(signal.SIGINT, lambda *_: setattr(server, "should_exit", True))
    server.run()


def run_worker(settings: Settings, *, concurrency: int | None = None, name: str | None = None) -> None:
    from celery.signals import worker_ready

    from workers.app import QUEUE, app
    from workers.pipeline import worker_context
    from workers.runtime import run_coroutine

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

    app.worker_main(
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


def _spawn_worker(index: int, env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "worker", "--name", f"embedded{index}"],
        env=env,
        stdin=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )


def run_embedded(settings: Settings) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    server: EmbeddedRedis | None = None
    if not settings.redis_url:
        server = EmbeddedRedis(settings.data_dir, persist=True).start()
        os.environ["REDIS_URL"] = server.url
    settings = Settings()  # again, now with the embedded Redis
    workers = [_spawn_worker(i, os.environ.copy(), settings.data_dir) for i in range(settings.workers)]
    try:
        run_gateway(settings, embedded=True)
        return 0
    finally:
        _stop_children(workers)
        if server is not None:
            server.stop()
        log.info("patchbay stopped")


def _stop_children(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)  # Celery's warm shutdown: finish what is in flight
    for child in children:
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            log.warning("worker pid=%d did not stop in 20 s; killing it", child.pid)
            child.kill()
            child.wait()
