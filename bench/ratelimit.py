"""Admission decisions per second from one process, measured as admission makes them, beside redis-benchmark.

    python bench/ratelimit.py [--redis-url URL] [--seconds 3] [--concurrency 64]

What runs is what the gateway runs per message: ``Guard.check(envelope)`` (ingress size checks,
then one EVALSHA of guard.lua: block lists, mute, flood, spam, and every rate limit), over the
gateway's own client (``redis_client(url, max_connections=1024)``), ``--concurrency`` messages in
flight from one event loop, one call per message, no pipelining. The limits have the shipped
structure (user 3 windows, conversation 2, platform, global: 7 buckets; flood and spam checks on)
with amounts raised so that every decision walks the whole script to an allow: the benchmark
measures deciding, not refusing. Traffic: 10,000 users in 2,000 conversations on 4 platforms.

The guard coalesces concurrent decisions into one pipeline write (gateway/limits/batching.py), as
it does in the gateway; the same Guard with ``coalesce=False`` (every decision its own round trip)
is measured too. Baselines, in the same run on the same server: redis-benchmark running EVALSHA of the same script
with the same keys and arguments (``__rand_int__`` spreads users and conversations) from
``--concurrency`` clients, which is the server's ceiling for this decision; and PING from as many
clients, the ceiling of a round trip. Goal: >= 10,000 decisions/s.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis

from gateway.embedded_redis import EmbeddedRedis
from gateway.limits import LimitSettings
from gateway.limits.guard import Guard
from gateway.shared.envelope import Envelope, Platform
from gateway.shared.redis_urls import redis_client, redis_py_url

GOAL = 10_000
USERS, CONVERSATIONS = 10_000, 2_000
PLATFORMS = (Platform.DISCORD, Platform.TELEGRAM, Platform.SLACK, Platform.WEBCHAT)


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


def generous() -> LimitSettings:
    """The shipped limit structure (same windows, same checks), amounts out of reach."""
    return LimitSettings(
        user="1000000/minute;10000000/hour;100000000/day",
        conversation="1000000/minute;10000000/hour",
        platform="100000000/minute",
        global_="100000000/minute",
        flood_messages=1_000_000,
    )


def envelope(i: int) -> Envelope:
    return Envelope(
        platform=PLATFORMS[i % 4],
        bot_id="bot",
        conversation_id=f"c{i % CONVERSATIONS}",
        message_id=f"m{i}",
        author_id=f"u{i % USERS}",
        text=f"message number {i} about the weather and my day",
    )


def redis_benchmark(url: str, concurrency: int, requests: int, *command: str) -> float | None:
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return None
    parsed = urlparse(url)
    where = (
        ["-s", parsed.path]
        if parsed.scheme == "unix"
        else ["-h", parsed.hostname or "127.0.0.1", "-p", str(parsed.port or 6379)]
    )
    if parsed.scheme != "unix" and parsed.path.strip("/"):
        where += ["--dbnum", parsed.path.strip("/")]
    args = [binary, *where, "-n", str(requests), "-c", str(concurrency), "-P", "1", "-r", str(USERS), "--csv"]
    output = subprocess.run([*args, *command], capture_output=True, text=True, check=True, timeout=180).stdout
    rows = [row for row in csv.reader(io.StringIO(output)) if row and row[0] != "test"]
    return float(rows[0][1])


def evalsha_command(guard: Guard, sha: str) -> list[str]:
    """The EVALSHA a decision sends, with the user and conversation replaced by ``__rand_int__``."""
    sample = envelope(0)
    keys, args = guard.script_call(sample, None)
    text = [str(part) for part in [*keys, *args]]
    spread = [
        part.replace(sample.user_key, "telegram:__rand_int__").replace(sample.conversation_id, "c__rand_int__")
        for part in text
    ]
    return ["EVALSHA", sha, str(len(keys)), *spread]


async def measure(url: str, seconds: float, concurrency: int, *, coalesce: bool = True) -> tuple[float, int]:
    client = redis_client(url, max_connections=1024)  # as gateway/app.py opens it
    guard = Guard(client, generous(), coalesce=coalesce)
    envelopes = [envelope(i) for i in range(USERS * 2)]
    for warm in envelopes[:concurrency]:
        await guard.check(warm)  # loads the script, opens the connections
    done = 0
    refused = 0
    deadline = time.perf_counter() + seconds

    async def sender(start: int) -> None:
        nonlocal done, refused
        i = start
        while time.perf_counter() < deadline:
            decision = await guard.check(envelopes[i % len(envelopes)])
            refused += decision.action != "allow"
            done += 1
            i += concurrency

    started = time.perf_counter()
    await asyncio.gather(*(sender(k) for k in range(concurrency)))
    rate = done / (time.perf_counter() - started)
    await client.aclose()
    return rate, refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--benchmark-requests", type=int, default=100_000)
    options = parser.parse_args()
    with bench_redis(options.redis_url) as url:
        sync = redis.Redis.from_url(url)
        guard = Guard(redis_client(url), generous())
        sha = str(sync.script_load(guard.script_text))
        command = evalsha_command(guard, sha)
        rate, refused = asyncio.run(measure(url, options.seconds, options.concurrency))
        alone, _ = asyncio.run(measure(url, options.seconds, options.concurrency, coalesce=False))
        script_rps = redis_benchmark(url, options.concurrency, options.benchmark_requests, *command)
        ping_rps = redis_benchmark(url, options.concurrency, options.benchmark_requests, "PING")
        sync.flushdb()
        sync.close()
    from redis.utils import HIREDIS_AVAILABLE

    parser_name = "hiredis" if HIREDIS_AVAILABLE else "pure Python (hiredis not installed)"
    print(f"server: {url}")
    print(
        f"configuration: Guard.check per message, {options.concurrency} in flight, no pipelining; "
        f"shipped limit structure (7 buckets, flood, spam), amounts out of reach; reply parser {parser_name}"
    )
    verdict = "met" if rate >= GOAL else "NOT met"
    print(
        f"admission decisions/s (Guard.check):          {rate:12,.0f}   goal >= {GOAL:,}: {verdict} ({rate / GOAL:.2f}x)"
    )
    if refused:
        print(f"  ({refused} decisions were refusals: the limits were not out of reach)")
    print(
        f"  the same, each decision sent alone (coalesce=False): {alone:12,.0f}   "
        f"coalesced / alone = {rate / alone:.2f}x"
    )
    if script_rps is None or ping_rps is None:
        print("redis-benchmark not found (apt-get install redis-tools): no same-server baseline")
        return
    print(
        f"redis-benchmark EVALSHA guard.lua, {options.concurrency} clients: {script_rps:12,.0f}   "
        f"Guard.check / EVALSHA = {rate / script_rps:.3f}"
    )
    print(
        f"redis-benchmark PING, {options.concurrency} clients:             {ping_rps:12,.0f}   "
        f"Guard.check / PING = {rate / ping_rps:.3f}"
    )


if __name__ == "__main__":
    main()
