"""Rate-limit decisions per second from one process, beside redis-benchmark on the same server.

    python bench/ratelimit.py [--redis-url URL] [--seconds 3] [--batch 500]

Each decision evaluates every configured limit (user, conversation, platform, global: the
defaults, five windows) in one Lua call. Figures are printed as ratios against redis-benchmark
run in the same process on the same server: SET with the same pipeline depth (the server's
ceiling for one trivial command), and PING without pipelining for the single-decision case.
Goal: >= 20,000 decisions/s with pipelining.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import redis.asyncio as aioredis

from gateway.embedded_redis import EmbeddedRedis
from gateway.limits import LimitRequest, LimitSettings, RateLimiter
from gateway.shared.redis_urls import redis_py_url

GOAL = 20_000


@contextmanager
def bench_redis(url: str | None) -> Iterator[str]:
    """``--redis-url`` / ``REDIS_URL``, else a private embedded server on a unix socket."""
    url = url or os.environ.get("REDIS_URL")
    if url:
        yield redis_py_url(url)
        return
    with (
        tempfile.TemporaryDirectory(prefix="patchbay-bench-") as directory,
        EmbeddedRedis(Path(directory), persist=False) as server,
    ):
        yield server.url


def redis_benchmark_rps(url: str, test: str, pipeline: int, requests: int) -> float | None:
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return None
    parsed = urlparse(url)
    where = (
        ["-s", parsed.path]
        if parsed.scheme == "unix"
        else ["-h", parsed.hostname or "127.0.0.1", "-p", str(parsed.port or 6379)]
    )
    args = [binary, *where, "-t", test, "-n", str(requests), "-P", str(pipeline), "-c", "1", "--csv"]
    output = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120).stdout
    rows = [row for row in csv.reader(io.StringIO(output)) if row and row[0] != "test"]
    return float(rows[0][1])


def _requests(count: int, offset: int) -> list[LimitRequest]:
    # 10,000 users in 2,000 conversations on 4 platforms: realistic key spread, no hot single key.
    platforms = ("discord", "telegram", "slack", "webchat")
    return [
        LimitRequest(platforms[i % 4], "bot", f"c{(offset + i) % 2000}", f"u{(offset + i) % 10_000}")
        for i in range(count)
    ]


async def measure(url: str, seconds: float, batch: int) -> tuple[float, float]:
    client = aioredis.Redis.from_url(url)
    # Generous limits: the benchmark measures deciding, not refusing.
    settings = LimitSettings(user="1000000/minute;10000000/day", conversation="1000000/minute",
                             platform="100000000/minute", global_="100000000/minute")  # fmt: skip
    limiter = RateLimiter(client, settings)
    await limiter.check_many(_requests(batch, 0))  # load the script
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        await limiter.check_many(_requests(batch, done))
        done += batch
    pipelined = done / (time.perf_counter() - started)
    single, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds / 2:
        await limiter.check("discord", "bot", f"c{single % 2000}", f"u{single % 10_000}")
        single += 1
    sequential = single / (time.perf_counter() - started)
    await client.flushdb()
    await client.aclose()
    return pipelined, sequential


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--batch", type=int, default=500)
    options = parser.parse_args()
    with bench_redis(options.redis_url) as url:
        pipelined, sequential = asyncio.run(measure(url, options.seconds, options.batch))
        set_rps = redis_benchmark_rps(url, "set", options.batch, 200_000)
        ping_rps = redis_benchmark_rps(url, "ping_mbulk", 1, 20_000)
    print(f"server: {url}")
    print(
        f"rate-limit decisions/s, pipelined x{options.batch}: {pipelined:12,.0f}   goal >= {GOAL:,}: "
        f"{'met' if pipelined >= GOAL else 'NOT met'} ({pipelined / GOAL:.2f}x the goal)"
    )
    print(f"rate-limit decisions/s, one at a time:      {sequential:12,.0f}")
    if set_rps is None or ping_rps is None:
        print("redis-benchmark not found (apt-get install redis-tools): no same-server baseline")
        return
    print(
        f"redis-benchmark SET/s, pipeline {options.batch}, 1 client: {set_rps:12,.0f}   "
        f"decisions / SET = {pipelined / set_rps:.3f}"
    )
    print(
        f"redis-benchmark PING/s, no pipeline, 1 client: {ping_rps:12,.0f}   "
        f"single decisions / PING = {sequential / ping_rps:.3f}"
    )


if __name__ == "__main__":
    main()
