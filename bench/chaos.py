"""Chaos benchmark: does every message get exactly one reply, in order, while the cluster is being broken?

    python bench/chaos.py [--messages 400] [--duration 60] [--kills 10] [--handout-kills 3]
                          [--redis-sigterm 1] [--redis-sigkill 1] [--redeliveries 20] [--seed 1] [--runs 3]

A real ``redis-server`` (append-only file, fsync always, noeviction) on a private port, one gateway
and ``--workers`` worker processes started from this checkout's venv, the Telegram (long polling) and
Slack (Events API) simulators driven through the real client libraries, web chat users over HTTP,
and an LLM stub answering in ``--llm-latency-ms``. During the traffic: worker SIGKILLs at seeded
moments (some aimed right after Redis hands out a message), each replaced at once; Redis restarts
with SIGTERM and with SIGKILL on the same port and data; Telegram updates served again and Slack
events retried. Then it waits (bounded) for the stragglers and reports sent / answered / lost /
duplicated / out of order, latency percentiles and the fault log. Exit status 1 on any loss,
duplicate, misorder or stray reply, or a process left running (and, with ``--max-p95``, a p95 over
it). The defaults are the scenario of the reliability issue's "done when", which also asks for
``--max-p95 30``. Run ``--runs N`` for N runs with seeds seed, seed+1, ...
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.chaos.plan import ChaosConfig
from tests.chaos.run import ChaosResult, run_chaos


def parse(argv: list[str] | None = None) -> tuple[ChaosConfig, argparse.Namespace]:
    d = ChaosConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", type=int, default=d.messages)
    p.add_argument("--duration", type=float, default=d.duration_s, help="seconds of traffic")
    p.add_argument("--telegram-chats", type=int, default=d.telegram_chats)
    p.add_argument("--slack-chats", type=int, default=d.slack_chats)
    p.add_argument("--webchat-chats", type=int, default=d.webchat_chats)
    p.add_argument("--workers", type=int, default=d.workers)
    p.add_argument("--kills", type=int, default=d.kills, help="worker SIGKILLs in all")
    p.add_argument("--handout-kills", type=int, default=d.handout_kills, help="of --kills: right after a hand-out")
    p.add_argument("--redis-sigterm", type=int, default=d.redis_sigterm)
    p.add_argument("--redis-sigkill", type=int, default=d.redis_sigkill)
    p.add_argument("--redis-down", type=float, default=d.redis_down_s, help="seconds Redis stays down per restart")
    p.add_argument("--redeliveries", type=int, default=d.redeliveries, help="Telegram re-served + Slack retried")
    p.add_argument("--visibility-timeout", type=int, default=d.visibility_timeout_s)
    p.add_argument("--llm-latency-ms", type=float, default=d.llm_latency_ms)
    p.add_argument("--settle", type=float, default=d.settle_s, help="bound on waiting for stragglers (s)")
    p.add_argument("--quiet", type=float, default=None, help="watch for late duplicates (s; default VT + 5)")
    p.add_argument("--max-p95", type=float, default=None, help="also fail when p95 latency exceeds this (s)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--runs", type=int, default=1, help="runs in a row, seeds seed, seed+1, ...")
    p.add_argument("--workdir", type=Path, default=None, help="keep logs and Redis data here (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir even when the run passes")
    p.add_argument("--quiet-log", action="store_true", help="do not echo faults as they happen")
    args = p.parse_args(argv)
    config = ChaosConfig(
        messages=args.messages,
        duration_s=args.duration,
        telegram_chats=args.telegram_chats,
        slack_chats=args.slack_chats,
        webchat_chats=args.webchat_chats,
        workers=args.workers,
        kills=args.kills,
        handout_kills=args.handout_kills,
        redis_sigterm=args.redis_sigterm,
        redis_sigkill=args.redis_sigkill,
        redis_down_s=args.redis_down,
        redeliveries=args.redeliveries,
        visibility_timeout_s=args.visibility_timeout,
        llm_latency_ms=args.llm_latency_ms,
        settle_s=args.settle,
        quiet_s=args.quiet,
        seed=args.seed,
    )
    return config, args


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # SIGTERM ends the run like Ctrl-C: through the cleanup


def main(argv: list[str] | None = None) -> int:
    try:
        config, args = parse(argv)
    except ValueError as exc:
        print(f"chaos: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    # The simulators run in this process: a request cut short because the run stopped the gateway is not news.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    results: list[ChaosResult] = []
    for run in range(args.runs):
        seeded = config.with_seed(config.seed + run)
        workdir = args.workdir / f"run{run}" if args.workdir else Path(tempfile.mkdtemp(prefix="patchbay-chaos-"))
        workdir.mkdir(parents=True, exist_ok=True)
        print(f"--- run {run + 1}/{args.runs} (seed {seeded.seed}) in {workdir}", flush=True)
        started = time.monotonic()
        echo = None if args.quiet_log else (lambda line: print(line, flush=True))
        try:
            result = run_chaos(seeded, workdir, echo=echo)
        except KeyboardInterrupt:
            print(f"--- interrupted; every process of the run was stopped (logs in {workdir})", flush=True)
            return 130
        print(result.report(), flush=True)
        passed = result.ok and _p95_within(result, args.max_p95)
        print(f"--- run {run + 1} took {time.monotonic() - started:.0f}s: {'PASS' if passed else 'FAIL'}", flush=True)
        results.append(result)
        if passed and not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    if len(results) > 1:
        print("\nrun  seed  sent  answered  lost  duplicated  out_of_order  stray  p50_s  p95_s  max_s")
        for i, result in enumerate(results):
            s = result.score.summary()
            print(
                f"{i + 1:3d}  {result.config.seed:4d}  {s['sent']:4}  {s['answered']:8}  {s['lost']:4}  "
                f"{s['duplicated']:10}  {s['out_of_order']:12}  {s['stray_replies']:5}  "
                f"{s['p50_s']!s:>5}  {s['p95_s']!s:>5}  {s['max_s']!s:>5}"
            )
    return 0 if all(r.ok and _p95_within(r, args.max_p95) for r in results) else 1


def _p95_within(result: ChaosResult, limit: float | None) -> bool:
    p95 = result.score.latency(0.95)
    if limit is None or p95 is None or p95 <= limit:
        return True
    print(f"p95 latency {p95:.1f}s is over --max-p95 {limit:.1f}s", flush=True)
    return False


if __name__ == "__main__":
    sys.exit(main())
