"""Real processes for end-to-end tests: a gateway and Celery workers started as `patchbay` subprocesses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

__all__ = ["ADMIN_TOKEN", "WEBCHAT_API_KEY", "Cluster", "free_port", "wait_until"]

ADMIN_TOKEN = "test-admin-token"
# Tests act for named web chat users as a site would: server to server, with a web chat API key.
WEBCHAT_API_KEY = "test-webchat-api-key"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], Any], *, timeout_s: float = 60, interval_s: float = 0.1, what: str = "") -> Any:
    """Poll until ``condition()`` is truthy; generous deadlines only guard against hangs, they assert nothing."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what or condition!r} after {timeout_s}s")
        time.sleep(interval_s)


class Cluster:
    """One gateway and N workers sharing a Redis and a data directory."""

    def __init__(self, redis_url: str, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "PATCHBAY_DATA_DIR": str(data_dir),
            "PATCHBAY_HTTP_PORT": str(self.port),
            "PATCHBAY_ADMIN_TOKEN": ADMIN_TOKEN,
            "PATCHBAY_WEBCHAT_API_KEYS": WEBCHAT_API_KEY,
            "PATCHBAY_LOG_LEVEL": "INFO",
            # Generous limits: these tests are about the pipeline; rate-limit tests set their own.
            "PATCHBAY_LIMIT_USER": "1000/minute",
            "PATCHBAY_LIMIT_CONVERSATION": "1000/minute",
            "PATCHBAY_LIMIT_PLATFORM": "100000/minute",
            "PATCHBAY_LIMIT_GLOBAL": "100000/minute",
            "PATCHBAY_LIMIT_WEBCHAT_SESSION": "1000/minute",
            "PATCHBAY_LIMIT_WEBCHAT_ADDRESS": "1000/minute",
            **(env or {}),
        }
        self.workers: list[subprocess.Popen[bytes]] = []
        self.gateway: subprocess.Popen[bytes] | None = None
        # Beside the data directory, not in it: the data directory is the processes' own (0700, files 0600).
        self.log_dir = data_dir.parent / f"{data_dir.name}-logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "ab")
        return subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def start_worker(self, concurrency: int = 20) -> subprocess.Popen[bytes]:
        index = len(self.workers)
        worker = self._spawn(f"worker{index}", "worker", "--concurrency", str(concurrency), "--name", f"w{index}")
        self.workers.append(worker)
        return worker

    def start_gateway(self) -> None:
        self.gateway = self._spawn("gateway", "gateway")
        wait_until(self._http_up, timeout_s=60, what="the gateway to listen")

    def start_embedded(self, workers: int = 1) -> Cluster:
        """``patchbay run``: the embedded Redis in the data directory, ``workers`` workers and the gateway."""
        self.env.pop("REDIS_URL", None)
        self.env["PATCHBAY_WORKERS"] = str(workers)
        self.gateway = self._spawn("gateway", "run")
        wait_until(self._http_up, timeout_s=90, what="patchbay run to listen")
        self.wait_workers(workers)
        return self

    def _http_up(self) -> bool:
        if self.gateway is not None and self.gateway.poll() is not None:
            raise RuntimeError(f"gateway exited with {self.gateway.returncode}:\n{self.logs('gateway')}")
        try:
            return httpx.get(self.url + "/healthz", timeout=2).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    def wait_workers(self, count: int = 1, timeout_s: float = 120) -> None:
        def ready() -> bool:
            for worker in self.workers:
                if worker.poll() is not None:
                    raise RuntimeError(f"a worker exited with {worker.returncode}:\n{self.logs('worker0')}")
            seen = httpx.get(self.url + "/healthz", timeout=5).json()["checks"]["workers"]["seen"]
            return len(seen) >= count

        wait_until(ready, timeout_s=timeout_s, interval_s=0.3, what=f"{count} worker(s) to report")

    def start(self, workers: int = 1, concurrency: int = 20) -> Cluster:
        for _ in range(workers):
            self.start_worker(concurrency)
        self.start_gateway()
        self.wait_workers(workers)
        return self

    def kill_worker(self, worker: subprocess.Popen[bytes]) -> None:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()

    def logs(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""

    def chat(self, user_id: str, text: str, **extra: Any) -> httpx.Response:
        """A message from web chat user ``user_id``, sent as a site does: server to server, with the API key."""
        return httpx.post(
            self.url + "/api/chat",
            json={"user_id": user_id, "text": text, **extra},
            headers={"Authorization": f"Bearer {WEBCHAT_API_KEY}"},
            timeout=120,
        )

    def browser(self, **headers: str) -> httpx.Client:
        """A client like a browser: no key, it keeps the session cookie the gateway issues."""
        return httpx.Client(base_url=self.url, timeout=120, headers=headers)

    def stop(self) -> None:
        processes = [p for p in [self.gateway, *self.workers] if p is not None and p.poll() is None]
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
