"""Where a worker's CPU goes, per message: py-spy samples of the worker process, attributed to stages.

The total is exact: the worker's CPU time (user + system, every thread) from ``/proc/<pid>/stat``
over the measured window, divided by the messages answered in it. The split is sampled: ``py-spy
record --format raw`` against the worker's pid (active threads only, so idle pool threads waiting for
a task count for nothing), each sample charged to the **innermost** frame that belongs to a stage.
Library frames that are no stage of their own (redis-py, httpx, numpy) are charged to the caller
that asked for them: a Redis call made by the ledger is ledger cost, the same call made by egress is
egress cost. The event loop's own frames (``asyncio``) are a stage only when no other stage is on
the stack (its scheduling, its ``epoll``); under a stage's call they are that stage's cost.

A sample taken while a module is being imported is charged to "first-use imports": start-up cost
(litellm imports parts of itself on the first use of each code path), not a per-message one.

Without py-spy (or without the right to trace the process) only the total is printed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["IMPORTS", "STAGES", "ProcessSampler", "StageProfile", "attribute", "cpu_seconds", "rss_mb"]

_STDLIB = f"/python{sys.version_info.major}.{sys.version_info.minor}/"  # not site-packages' redis/asyncio/

# (stage, path fragments) in no particular order; the innermost frame matching any fragment decides.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("embedding", ("workers/memory/embedder.py", "workers/memory/minilm.py", "/tokenizers/")),
    ("memory (SQL store)", ("workers/memory/", "/sqlalchemy/", "/aiosqlite/", _STDLIB + "sqlite3/", "/psycopg/")),
    ("litellm", ("/litellm/", "/openai/", "workers/llm/")),
    ("patch layers", ("/patches/",)),
    ("ledger", ("gateway/shared/ledger.py", "workers/reaper.py", "gateway/shared/infra.py")),
    ("egress", ("workers/egress.py", "/adapters/")),
    ("analytics events", ("gateway/shared/events.py", "workers/report.py", "gateway/analytics/")),
    ("logging", (_STDLIB + "logging/", "gateway/shared/logs.py")),
    ("envelope (pydantic)", ("gateway/shared/envelope.py", "/pydantic/", "/pydantic_core/")),
    ("emotion", ("workers/emotion/",)),
    ("handler + pipeline", ("workers/pipeline.py", "workers/handler.py", "workers/tasks.py")),
    ("celery + kombu", ("/celery/", "/kombu/", "/billiard/", "/vine/", "/amqp/")),
    ("prometheus", ("/prometheus_client/",)),
    ("asyncio loop", (_STDLIB + "asyncio/", "workers/runtime.py", _STDLIB + "selectors.py")),
)

IMPORTS = "first-use imports (start-up cost)"
_IMPORTING = "<frozen importlib._bootstrap>"

# Charged only when no other stage is on the stack: a socket write under a ledger call is the ledger's.
_FALLBACK = {"asyncio loop"}

# Threads named by their root frame: Celery's thread pool, aiosqlite's one thread per connection.
_THREADS = (("ThreadPoolExecutor-", "celery + kombu"), ("_connection_worker_thread", "memory (SQL store)"))

_FRAME = re.compile(r"\((?P<file>[^():]+)(?::\d+)?\)$")


def _stage_of(frame: str) -> str | None:
    match = _FRAME.search(frame)
    path = match.group("file") if match else frame
    path = path.replace("\\", "/")
    if "/" not in path:
        path = "/" + path
    for stage, fragments in STAGES:
        if any(fragment in path for fragment in fragments):
            return stage
    return None


def attribute(raw: str) -> Counter[str]:
    """Samples per stage from py-spy's raw (collapsed) output: ``frame;frame;...;frame count`` per line."""
    samples: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        if _IMPORTING in stack:  # a module loaded on first use (litellm imports parts of itself per code path)
            samples[IMPORTS] += int(count)
            continue
        stage = None
        for frame in reversed(stack.split(";")):  # innermost last in py-spy's output
            found = _stage_of(frame)
            if found in _FALLBACK:
                stage = stage or found  # the loop's own frames under a stage's call are that stage's cost
                continue
            if found is not None:
                stage = found
                break
        if stage is None or stage in _FALLBACK:
            # A thread with no stage on its stack: name it by its thread (py-spy's root frame).
            root = stack.split(";", 1)[0]
            stage = next((name for marker, name in _THREADS if marker in root), stage)
        samples[stage or "other (C, GIL waits)"] += int(count)
    return samples


def cpu_seconds(pid: int) -> float:
    """User + system CPU of every thread of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class StageProfile:
    messages: int
    cpu_s: float
    samples: Counter[str] = field(default_factory=Counter)

    @property
    def ms_per_message(self) -> float:
        return self.cpu_s * 1000 / max(self.messages, 1)

    def stage_ms(self) -> dict[str, float]:
        total = sum(self.samples.values())
        if not total:
            return {}
        return {stage: self.ms_per_message * n / total for stage, n in self.samples.most_common()}

    def outside(self, *excluded: str) -> float:
        stages = self.stage_ms()
        if not stages:
            return float("nan")
        return sum(ms for stage, ms in stages.items() if stage not in excluded)


def _py_spy() -> str | None:
    found = shutil.which("py-spy")
    if found:
        return found
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else None


class ProcessSampler:
    """``with ProcessSampler(pid) as s: ...`` then ``s.profile(messages)``: CPU and its stages over the block."""

    def __init__(self, pid: int, rate: int = 250) -> None:
        self.pid = pid
        self.rate = rate
        self._spy: subprocess.Popen[bytes] | None = None
        self._out = Path(tempfile.mkstemp(prefix="patchbay-spy-", suffix=".txt")[1])
        self._cpu0 = 0.0
        self.cpu_s = 0.0
        self.samples: Counter[str] = Counter()
        self.error = ""

    def __enter__(self) -> ProcessSampler:
        binary = _py_spy()
        if binary is None:
            self.error = "py-spy not installed: stage split not measured"
        else:
            self._spy = subprocess.Popen(
                [binary, "record", "--pid", str(self.pid), "--rate", str(self.rate), "--format", "raw",
                 "--output", str(self._out), "--nonblocking", "--threads", "--full-filenames"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip
        self._cpu0 = cpu_seconds(self.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu_s = cpu_seconds(self.pid) - self._cpu0
        if self._spy is None:
            return
        self._spy.send_signal(signal.SIGINT)
        try:
            _, err = self._spy.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self._spy.kill()
            _, err = self._spy.communicate()
        with contextlib.suppress(OSError):
            raw = self._out.read_text()
            # --threads adds a "thread (0x...)" root frame: it matches no stage, so it changes nothing.
            self.samples = attribute(raw)
            keep = os.environ.get("PATCHBAY_BENCH_KEEP_SAMPLES")  # a directory: keep py-spy's raw stacks there
            if keep:
                Path(keep).mkdir(parents=True, exist_ok=True)
                (Path(keep) / f"worker-{self.pid}.txt").write_text(raw)
        if not self.samples:
            self.error = f"py-spy recorded nothing: {err.decode(errors='replace').strip()[-300:]}"
        with contextlib.suppress(OSError):
            self._out.unlink()

    def profile(self, messages: int) -> StageProfile:
        return StageProfile(messages, self.cpu_s, self.samples)
