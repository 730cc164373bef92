"""The faults of a chaos run, and the log of what was done to the cluster when.

Worker kills are SIGKILLs of a whole worker process, replaced at once by a fresh one (an
orchestrator restarting a crashed container). The *hand-out* kill aims at the moment Redis gives a
message to a worker: it makes the victim the first consumer in line (the other workers' blocking
reads are released with ``CLIENT UNBLOCK``, which they see as an ordinary timeout and re-issue at
the back of the line), sends a message, and kills the victim 3-10 ms later. That lands the SIGKILL
either while the victim's socket still looks alive to Redis, or after Redis handed the message over
but before the worker recorded it anywhere: the two windows in which a broker pop can vanish.

Redis restarts stop the server with SIGTERM (a clean shutdown) or SIGKILL (a crash) and start it again
after ``down_s`` on the same port with the same append-only file. The stop happens now and the start
is returned as a deadline, so the caller's loop keeps sending traffic into the outage.

Workers or a gateway that exit on their own are restarted like ``restart: unless-stopped`` in the
shipped docker-compose.yml would, and logged: a crash of ours is a finding, not something to hide.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.harness import Cluster, RedisServer

__all__ = ["FaultInjector", "FaultLog", "consumer_clients", "local_ports"]

# Commands a queue consumer blocks in (a list pop for Celery's Redis transport, a stream read for consumer groups).
_BLOCKING = {"brpop", "blpop", "brpoplpush", "blmove", "blmpop", "bzpopmin", "bzpopmax", "xread", "xreadgroup"}


@dataclass(slots=True)
class FaultLog:
    """What was done to the cluster, relative to the start of the traffic."""

    t0: float = field(default_factory=time.monotonic)
    entries: list[tuple[float, str, str]] = field(default_factory=list)
    echo: Callable[[str], None] | None = None

    def add(self, kind: str, detail: str) -> None:
        entry = (time.monotonic() - self.t0, kind, detail)
        self.entries.append(entry)
        if self.echo is not None:
            self.echo(self.format(entry))

    def count(self, kind: str) -> int:
        return sum(1 for _, k, _ in self.entries if k == kind)

    @staticmethod
    def format(entry: tuple[float, str, str]) -> str:
        at, kind, detail = entry
        return f"  t={at:7.2f}s  {kind:<20} {detail}"

    def lines(self) -> list[str]:
        return [self.format(entry) for entry in self.entries]


def local_ports(pid: int, remote_port: int) -> set[int]:
    """Local TCP ports of ``pid``'s sockets connected to 127.0.0.1:``remote_port`` (Linux /proc)."""
    inodes: set[str] = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return set()
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[9] not in inodes:
                continue
            local, remote = fields[1], fields[2]
            if int(remote.rsplit(":", 1)[1], 16) == remote_port:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def consumer_clients(server: RedisServer) -> list[dict[str, str]]:
    """Redis clients blocked in a consumer's read, as ``CLIENT LIST`` reports them."""
    client = server.client(timeout_s=1.0)
    try:
        return [
            {k: str(v) for k, v in entry.items()}
            for entry in client.client_list()
            if "b" in str(entry.get("flags", "")) and str(entry.get("cmd", "")).lower() in _BLOCKING
        ]
    finally:
        client.close()


class FaultInjector:
    """Applies faults to a running cluster; every action goes to ``log``. Call everything from one thread."""

    def __init__(
        self,
        cluster: Cluster,
        server: RedisServer,
        rng: random.Random,
        log: FaultLog,
        *,
        concurrency: int | None = None,
        down_s: float = 1.0,
    ) -> None:
        self.cluster = cluster
        self.server = server
        self.rng = rng
        self.log = log
        self.concurrency = concurrency
        self.down_s = down_s
        self._ours: set[int] = set()  # pids we killed or stopped on purpose
        self._reported: set[int] = set()
        self._reap: list[subprocess.Popen[bytes]] = []
        self.redis_back_at: float | None = None  # monotonic deadline of a pending Redis start
        self._redis_stopped_at = 0.0

    # ------------------------------------------------------------------ workers

    def _victim(self) -> subprocess.Popen[bytes] | None:
        live = self.cluster.live_workers()
        return self.rng.choice(live) if live else None

    def _replace(self, victim: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        worker = self.cluster.start_worker(self.concurrency)
        index = self.cluster.workers.index(worker)
        self.log.add("worker_start", f"w{index} pid={worker.pid} replaces pid={victim.pid}")
        return worker

    def kill_worker(self) -> None:
        victim = self._victim()
        if victim is None:
            self.log.add("worker_kill", "no live worker to kill")
            return
        self._ours.add(victim.pid)
        self.cluster.kill_worker(victim)
        self.log.add("worker_kill", f"SIGKILL w{self.cluster.workers.index(victim)} pid={victim.pid}")
        self._replace(victim)

    def handout_kill(self, send: Callable[[], str]) -> None:
        """Make a worker first in line, ``send()`` a message (returns its tag), SIGKILL that worker 3-10 ms later."""
        consumers = self._consumers()
        live = self.cluster.live_workers()
        # A worker still starting up reads nothing yet: aim at one that is waiting for a message.
        candidates = [w for w in live if consumers.get(w.pid)] or live
        if not candidates:
            send()
            self.log.add("handout_kill", "no live worker to kill")
            return
        victim = self.rng.choice(candidates)
        first_in_line = self._put_first_in_line(victim, consumers)
        delay_s = self.rng.uniform(0.003, 0.010)
        tag = send()
        time.sleep(delay_s)
        self._ours.add(victim.pid)
        self.cluster.kill_worker(victim, wait=False)
        self.log.add(
            "handout_kill",
            f"SIGKILL w{self.cluster.workers.index(victim)} pid={victim.pid} {delay_s * 1000:.1f} ms after sending "
            f"{tag} ({'first in line' if first_in_line else 'no worker seen waiting: a random moment'})",
        )
        self._reap.append(victim)
        self._replace(victim)

    def _consumers(self) -> dict[int, list[int]]:
        """Live worker pid -> ids of its Redis clients blocked in a queue read ({} when Redis cannot tell)."""
        if self.redis_back_at is not None:
            return {}  # Redis is down (we stopped it): nobody is waiting on it
        try:
            blocked = consumer_clients(self.server)
        except Exception:
            return {}  # Redis is down: the kill still happens, aimed at nothing in particular
        by_port = {int(entry.get("addr", ":0").rsplit(":", 1)[1]): int(entry["id"]) for entry in blocked}
        consumers: dict[int, list[int]] = {}
        for worker in self.cluster.live_workers():
            ids = [by_port[port] for port in local_ports(worker.pid, self.server.port) if port in by_port]
            if ids:
                consumers[worker.pid] = ids
        return consumers

    def _put_first_in_line(self, victim: subprocess.Popen[bytes], consumers: dict[int, list[int]]) -> bool:
        """Release the other workers' blocking reads so that they queue up again behind ``victim``'s."""
        if not consumers.get(victim.pid):
            return False
        client = self.server.client(timeout_s=1.0)
        try:
            for pid, ids in consumers.items():
                if pid != victim.pid:
                    for client_id in ids:
                        client.client_unblock(client_id)
        except Exception:
            return False
        finally:
            client.close()
        time.sleep(0.002)  # the released readers re-issue their reads, behind the victim's
        return True

    # ------------------------------------------------------------------ Redis

    def redis_stop(self, signum: int) -> None:
        """Stop Redis now; ``redis_due`` says when to start it again (the caller keeps sending meanwhile)."""
        name = signal.Signals(signum).name
        code = self.server.send_signal(signum)
        self.log.add("redis_stop", f"{name} redis-server on port {self.server.port} (exit code {code})")
        self._redis_stopped_at = time.monotonic()
        self.redis_back_at = self._redis_stopped_at + self.down_s

    def redis_due(self) -> bool:
        return self.redis_back_at is not None and time.monotonic() >= self.redis_back_at

    def redis_start(self) -> None:
        started = time.monotonic()
        try:
            self.server.start()
        except RuntimeError as exc:
            self.log.add("redis_start", f"FAILED: {exc}")
            self.redis_back_at = time.monotonic() + 1.0
            return
        self.redis_back_at = None
        down = time.monotonic() - self._redis_stopped_at
        self.log.add(
            "redis_start", f"same port, same data; answering after {time.monotonic() - started:.2f}s, down {down:.2f}s"
        )

    # ------------------------------------------------------------------ supervision

    def supervise(self) -> None:
        """Restart what exited on its own (as the shipped compose file's restart policy would) and log it."""
        for process in [*self._reap]:
            if process.poll() is not None:
                self._reap.remove(process)
        for worker in list(self.cluster.workers):
            code = worker.poll()
            if code is None or worker.pid in self._ours or worker.pid in self._reported:
                continue
            self._reported.add(worker.pid)
            index = self.cluster.workers.index(worker)
            self.log.add("worker_exit", f"w{index} pid={worker.pid} exited ON ITS OWN with code {code}; restarting")
            self._replace(worker)
        gateway = self.cluster.gateway
        if gateway is not None and gateway.poll() is not None and gateway.pid not in self._reported:
            self._reported.add(gateway.pid)
            self.log.add("gateway_exit", f"pid={gateway.pid} exited ON ITS OWN with code {gateway.returncode}")
            try:
                self.cluster.start_gateway()
                self.log.add("gateway_start", f"pid={self.cluster.gateway.pid}")  # type: ignore[union-attr]
            except (RuntimeError, TimeoutError) as exc:
                self.log.add("gateway_start", f"FAILED: {exc}")

    def finish(self) -> None:
        """Wait for killed workers to be reaped (a SIGKILL is quick) so none is left as a zombie."""
        for process in self._reap:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._reap.clear()
