"""Real processes for end-to-end tests: a gateway and Celery workers started as `patchbay` subprocesses,
and (for the fault tests) a real ``redis-server`` on a private port that can be killed and restarted."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from gateway.embedded_redis import die_with_parent

__all__ = ["ADMIN_TOKEN", "WEBCHAT_API_KEY", "Cluster", "RedisServer", "free_port", "wait_until"]

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

    def start_worker(self, concurrency: int | None = 20) -> subprocess.Popen[bytes]:
        """Start one more worker; ``concurrency=None`` leaves it at the shipped default (PATCHBAY_WORKER_CONCURRENCY)."""
        index = len(self.workers)
        threads = () if concurrency is None else ("--concurrency", str(concurrency))
        worker = self._spawn(f"worker{index}", "worker", *threads, "--name", f"w{index}")
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

    def start(self, workers: int = 1, concurrency: int | None = 20) -> Cluster:
        for _ in range(workers):
            self.start_worker(concurrency)
        self.start_gateway()
        self.wait_workers(workers)
        return self

    def kill_worker(self, worker: subprocess.Popen[bytes], *, wait: bool = True) -> None:
        """SIGKILL ``worker``; ``wait=False`` returns at once (a fault test times what follows the signal)."""
        os.killpg(worker.pid, signal.SIGKILL)
        if wait:
            worker.wait()

    def live_workers(self) -> list[subprocess.Popen[bytes]]:
        return [worker for worker in self.workers if worker.poll() is None]

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

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM everything still running, then SIGKILL what is left after ``grace_s`` (one deadline for all)."""
        processes = [p for p in [self.gateway, *self.workers] if p is not None and p.poll() is None]
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RedisServer:
    """Debian's ``redis-server`` on 127.0.0.1:<private port>, data in ``directory``: what an operator runs.

    Append-only file with ``fsync always`` (nothing acknowledged is lost by a crash) and ``noeviction``
    (a full Redis refuses writes rather than dropping queued messages). ``restart`` stops it with a
    signal (SIGTERM: a clean shutdown; SIGKILL: a crash) and starts it again on the same port with the
    same data, so clients see the outage and the recovery an operator's restart would give them.
    """

    def __init__(self, directory: Path, port: int | None = None, binary: str | None = None) -> None:
        self.directory = directory.resolve()
        self.port = port or free_port()
        if self.port == 6379:
            raise ValueError("RedisServer kills and restarts its server: never on 6379, the machine's own Redis")
        found = binary or shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(found).exists():
            raise RuntimeError("redis-server is not installed; on Debian: apt-get install -y redis-server")
        self.binary = found
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, timeout_s: float = 2.0) -> redis.Redis:
        """A client that fails at once when the server is down (redis-py would otherwise retry with backoff
        for seconds, and a fault test must not stall on its own probes)."""
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )

    def start(self, timeout_s: float = 20.0) -> RedisServer:
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"redis-server already running on port {self.port}")
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--maxmemory-policy", "noeviction",
            "--daemonize", "no",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        # Its own session keeps a Ctrl-C away from it (the caller stops it last); die_with_parent ends it
        # if the caller is killed outright. Start it from the thread that lives longest: the main one.
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout_s
        while not self.alive():
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start-up; see {self.directory / 'redis.log'}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer within {timeout_s}s")
            time.sleep(0.02)
        return self

    def alive(self) -> bool:
        client = self.client(timeout_s=0.5)
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError, OSError):
            return False  # ResponseError: still loading the append-only file
        finally:
            client.close()

    def send_signal(self, signum: int, timeout_s: float = 30.0) -> int | None:
        """Send ``signum`` and wait for the exit; returns the exit code (None if it was not running)."""
        process = self.process
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        process.send_signal(signum)
        try:
            return process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    def restart(self, signum: int = signal.SIGTERM, down_s: float = 0.0) -> None:
        """Stop with ``signum``, stay down ``down_s`` seconds, start again on the same port with the same data."""
        self.send_signal(signum)
        if down_s > 0:
            time.sleep(down_s)
        self.start()

    def stop(self) -> None:
        self.send_signal(signal.SIGTERM)
        self.process = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
