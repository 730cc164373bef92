"""Process management: the all-in-one embedded run, and the separate gateway and worker processes.

``patchbay run`` = embedded Redis (unless REDIS_URL is set) + N worker processes + the gateway in
this process. Ctrl-C stops the gateway, then the workers, then Redis; children are started with
a parent-death signal so none outlives us even if we are killed. The umask (077) is set before any
child starts, so Redis' AOF, SQLite's files and every key come out private (``gateway.shared.files``).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import uvicorn

from gateway.edge import timed_protocol
from gateway.embedded_redis import EmbeddedRedis, die_with_parent
from gateway.shared.files import private_umask, secure_data_dir
from gateway.shared.settings import Settings

__all__ = ["run_embedded", "run_gateway"]

log = logging.getLogger(__name__)


def run_gateway(settings: Settings, *, embedded: bool = False) -> None:
    from gateway.app import create_app

    app = create_app(settings, embedded=embedded)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.http_host,
            port=settings.http_port,
            log_level="warning",
            lifespan="on",
            # The app applies PATCHBAY_TRUSTED_PROXIES itself; uvicorn's own default would trust 127.0.0.1.
            proxy_headers=False,
            server_header=False,
            http=timed_protocol(settings.header_timeout_s, settings.body_timeout_s),
        )
    )
    # With Python's default SIGINT handler in place, asyncio's runner would cancel the server task on
    # Ctrl-C and cut the shutdown (analytics flush, platform disconnects) short; with ours, it leaves
    # SIGINT to uvicorn, which shuts down gracefully.
    signal.signal(signal.SIGINT, lambda *_: setattr(server, "should_exit", True))
    server.run()


def _spawn_worker(index: int, env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "worker", "--name", f"embedded{index}"],
        env=env,
        stdin=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )


def run_embedded(settings: Settings) -> int:
    # Before anything is created: every file of this run and of the processes it starts is private.
    private_umask()
    secure_data_dir(settings.data_dir)
    server: EmbeddedRedis | None = None
    if not settings.redis_url:
        server = EmbeddedRedis(settings.data_dir, persist=True, maxmemory=settings.redis_maxmemory).start()
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
