"""One chaos run, start to finish, within a time bound, leaving no process behind.

The cluster is the shipped configuration started as an operator would (``patchbay gateway``, N x
``patchbay worker`` at their default concurrency) on a real ``redis-server`` with an append-only
file fsynced on every write. What differs from the shipped defaults is only what the run must set
to exist at all (Redis URL, ports, the simulators' URLs and tokens, the LLM stub) or names itself
(visibility timeout, generous rate limits so that the limiter does not answer for the pipeline, the
hashing embedder): ``ChaosResult.overrides`` lists every such variable and the report prints it.

One thread drives everything: it sends the Telegram and Slack messages on the simulators' loop,
applies the faults at their planned offsets and supervises the processes, so every process is
started from the main thread (the Redis server dies with it if the run itself is killed). The web
chat users run in threads of their own, since each of their requests waits for its reply.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

from adapters.sim.llm import SimulatorProcess
from tests.chaos.diagnose import diagnose
from tests.chaos.faults import FaultInjector, FaultLog
from tests.chaos.plan import ChaosConfig, FaultKind, Plan, PlannedMessage, Platform, make_plan
from tests.chaos.score import ReplySeen, Score, SentMessage, score
from tests.chaos.traffic import Observations, SlackUsers, TelegramUsers, WebchatClient, WebchatTap
from tests.e2e.harness import Cluster, RedisServer
from tests.e2e.platform_helpers import Platforms, wait_connected

__all__ = ["ChaosResult", "run_chaos"]

# The pipeline's apology when the handler failed: an answer, counted apart (workers.pipeline.INTERNAL_ERROR_REPLY).
APOLOGY = "Sorry, something went wrong on my side while answering. Please try again."


SLACK_RETRY_DELAYS_S = (1.0, 5.0, 20.0)


@dataclass(slots=True)
class ChaosResult:
    config: ChaosConfig
    score: Score
    faults: list[str]
    overrides: dict[str, str]
    diagnosis: list[str]
    workdir: Path
    log_dir: Path
    redeliveries: dict[str, int]
    webchat_resends: int
    leftovers: list[str]  # processes still running after the run: must be empty
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.score.ok and not self.leftovers

    def report(self) -> str:
        s = self.score.summary()
        c = self.config
        lines = [
            f"chaos run seed={c.seed}: {c.messages} messages over {c.duration_s:.0f}s in "
            f"{c.telegram_chats} Telegram + {c.slack_chats} Slack + {c.webchat_chats} web chat conversations, "
            f"{c.workers} workers",
            "  measures the shipped default configuration except: "
            + ", ".join(f"{k}={v}" for k, v in sorted(self.overrides.items()) if k in _NAMED)
            + f" (LLM stub answering in {c.llm_latency_ms:.0f} ms; the rest only point at the simulators and "
            "the private Redis)",
            f"  faults: {c.kills} worker SIGKILLs ({c.handout_kills} right after a hand-out), "
            f"{c.redis_sigterm} Redis SIGTERM + {c.redis_sigkill} SIGKILL restarts (down {c.redis_down_s:.1f}s each), "
            f"redeliveries: {self.redeliveries}",
            f"  sent {s['sent']}  answered {s['answered']}  LOST {s['lost']} (no reply {c.settle_s:.0f}s after the "
            f"traffic)  DUPLICATED {s['duplicated']}  "
            f"OUT OF ORDER {s['out_of_order']}  stray {s['stray_replies']}  (apologies {s['apologies']}, "
            f"web chat resends {self.webchat_resends})",
            f"  latency p50 {_s(s['p50_s'])}  p95 {_s(s['p95_s'])}  max {_s(s['max_s'])}",
            "  timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items()),
            "fault log:",
            *self.faults,
        ]
        if self.score.lost:
            lines.append("lost: " + " ".join(f"{c}.m{i:03d}" for c, i in self.score.lost[:60]))
        if self.score.duplicated:
            lines.append("duplicated: " + " ".join(f"{c}.m{i:03d}x{n}" for (c, i), n in self.score.duplicated.items()))
        for name, order in list(self.score.misordered_conversations.items())[:10]:
            lines.append(f"out of order in {name}: replies arrived for {order}")
        for reply in self.score.stray[:10]:
            lines.append(f"stray reply ({reply.source}): {reply.text[:100]!r}")
        lines += self.diagnosis
        if self.leftovers:
            lines.append("PROCESSES LEFT RUNNING: " + ", ".join(self.leftovers))
        lines.append(f"logs: {self.log_dir}; what was sent and received: {self.workdir / 'observations.json'}")
        return "\n".join(lines)


_NAMED = {
    "PATCHBAY_VISIBILITY_TIMEOUT",
    "PATCHBAY_EMBEDDING_MODEL",
    "PATCHBAY_LIMIT_USER",
    "PATCHBAY_LIMIT_CONVERSATION",
    "PATCHBAY_LIMIT_PLATFORM",
    "PATCHBAY_LIMIT_GLOBAL",
    "PATCHBAY_LLM_MODEL",
}


def _s(value: object) -> str:
    return "-" if value is None else f"{value:.2f}s"


def run_chaos(config: ChaosConfig, workdir: Path, echo: Callable[[str], None] | None = None) -> ChaosResult:
    """Run ``config`` in ``workdir`` (Redis data, logs); always stops what it started, even on Ctrl-C."""
    return _Run(config, workdir, echo).run()


class _Run:
    def __init__(self, config: ChaosConfig, workdir: Path, echo: Callable[[str], None] | None) -> None:
        self.config = config
        self.plan: Plan = make_plan(config)
        self.workdir = workdir
        self.echo = echo or (lambda line: None)
        self.rng = random.Random(config.seed * 7919 + 17)  # the faults' own choices (victims, redeliveries)
        self.observations = Observations()
        self.webchat_keys: dict[str, tuple[str, int]] = {}
        self.stop = threading.Event()
        self.futures: list[Future[str]] = []
        self.timings: dict[str, float] = {}
        self.deadline = float("inf")
        self.threads: list[threading.Thread] = []
        self._stopping = time.monotonic()

    def run(self) -> ChaosResult:
        config = self.config
        started = time.monotonic()
        server = RedisServer(self.workdir / "redis")
        llm: SimulatorProcess | None = None
        cluster: Cluster | None = None
        log = FaultLog(echo=self.echo)
        # Each part is stopped by a callback pushed as soon as it runs: all of them run, last started first,
        # even when one of them (or the run) fails or is interrupted.
        with ExitStack() as cleanup:
            cleanup.callback(self._timed, "stop", time.monotonic)
            cleanup.callback(server.stop)
            server.start()
            llm = SimulatorProcess("--latency-ms", str(config.llm_latency_ms), "--seed", str(config.seed))
            cleanup.callback(llm.stop)
            platforms = Platforms()
            cleanup.callback(platforms.close)
            # Slack retries a failed delivery about at once, after 1 minute and after 5 minutes; compressed here
            # so that a message refused during a short outage still gets its retries within the run.
            platforms.slack.retry_delays_s = SLACK_RETRY_DELAYS_S
            cluster = Cluster(server.url, self.workdir / "cluster")
            platforms.start(slack_events_url=cluster.url + "/slack/events")
            cluster.env.update(
                {
                    **platforms.env(),
                    "PATCHBAY_LLM_MODEL": "openai/sim-model",
                    "PATCHBAY_LLM_API_BASE": llm.base_url,
                    "OPENAI_API_KEY": "sk-chaos",
                    "PATCHBAY_VISIBILITY_TIMEOUT": str(config.visibility_timeout_s),
                    **config.extra_env,
                }
            )
            cleanup.callback(cluster.stop, grace_s=15)
            for _ in range(config.workers):
                cluster.start_worker(concurrency=None)  # the shipped default concurrency
            cluster.start_gateway()
            cluster.wait_workers(config.workers, timeout_s=config.startup_s)
            wait_connected(cluster)
            self.timings["startup"] = time.monotonic() - started

            injector = FaultInjector(cluster, server, self.rng, log, down_s=config.redis_down_s)
            cleanup.callback(injector.finish)
            telegram = TelegramUsers(platforms, self.observations)
            slack = SlackUsers(platforms, self.observations)
            cleanup.callback(self._collect, telegram, slack)  # while the simulators still hold what they got
            tap = WebchatTap(server.url, self.webchat_keys, self.observations)
            cleanup.callback(tap.close)
            cleanup.callback(self._stop_traffic)
            log.t0 = t0 = time.monotonic()
            self.deadline = t0 + config.duration_s + config.settle_s
            self.threads = self._start_webchat(cluster.url, t0)
            self._traffic(t0, platforms, telegram, slack, injector, log)
            self.timings["traffic"] = time.monotonic() - t0
            settled = time.monotonic()
            self._settle(telegram, slack, injector, log)
            self.timings["settle"] = time.monotonic() - settled
        leftovers = _leftovers(self.workdir)
        if llm is not None and llm.process.poll() is None:
            leftovers.append(f"llm simulator pid={llm.process.pid}")
        messages, replies = self.observations.snapshot()
        _dump(self.workdir / "observations.json", messages, replies)
        result = score(messages, replies, APOLOGY)
        lost = [m for m in messages if m.ref in set(result.lost)]
        assert cluster is not None
        return ChaosResult(
            config=config,
            score=result,
            faults=log.lines(),
            overrides={k: v for k, v in cluster.env.items() if k.startswith("PATCHBAY_") or k == "REDIS_URL"},
            diagnosis=diagnose(cluster.log_dir, lost, [m for m in messages if m.ref in result.duplicated]),
            workdir=self.workdir,
            log_dir=cluster.log_dir,
            redeliveries={
                "telegram": sum(m.redelivered for m in messages if m.platform == "telegram"),
                "slack": sum(m.redelivered for m in messages if m.platform == "slack"),
            },
            webchat_resends=sum(m.resends for m in messages),
            leftovers=leftovers,
            timings=self.timings,
        )

    # ------------------------------------------------------------------ phases

    def _timed(self, name: str, clock: Callable[[], float]) -> None:
        """Registered first, so it runs last: records how long stopping everything took."""
        self.timings[name] = clock() - self._stopping

    def _stop_traffic(self) -> None:
        self._stopping = time.monotonic()
        self.stop.set()
        for future in self.futures:
            future.cancel()
        for thread in self.threads:
            thread.join(timeout=10)

    def _collect(self, telegram: TelegramUsers, slack: SlackUsers) -> None:
        for reply in telegram.replies() + slack.replies():
            self.observations.add_reply(reply)
        slack.note_deliveries()

    def _start_webchat(self, base_url: str, t0: float) -> list[threading.Thread]:
        threads = []
        for conversation in self.plan.conversations:
            if conversation.platform is not Platform.WEBCHAT:
                continue
            client = WebchatClient(
                base_url, conversation.number, self.observations, self.webchat_keys, self.stop, lambda: self.deadline
            )
            schedule = [(t0 + m.at, m) for m in self.plan.of(conversation)]
            thread = threading.Thread(target=client.run, args=(schedule,), name=f"web-{conversation.name}", daemon=True)
            thread.start()
            threads.append(thread)
        return threads

    def _traffic(
        self,
        t0: float,
        platforms: Platforms,
        telegram: TelegramUsers,
        slack: SlackUsers,
        injector: FaultInjector,
        log: FaultLog,
    ) -> None:
        pending = [m for m in self.plan.messages if m.conversation.platform is not Platform.WEBCHAT]
        faults = list(self.plan.faults)
        sent: set[PlannedMessage] = set()

        def send(message: PlannedMessage, wait: bool = False) -> str:
            sent.add(message)
            users = telegram if message.conversation.platform is Platform.TELEGRAM else slack
            future = platforms.submit(users.send(message))
            if wait:
                return future.result(timeout=10)
            self.futures.append(future)
            return message.tag

        def next_telegram() -> PlannedMessage | None:
            return next((m for m in pending if m not in sent and m.conversation.platform is Platform.TELEGRAM), None)

        while pending or faults:
            next_message = next((m for m in pending if m not in sent), None)
            pending = [m for m in pending if m not in sent]
            upcoming = min(
                [m.at for m in pending[:1]] + [f.at for f in faults[:1]],
                default=None,
            )
            if upcoming is None:
                break
            self._wait_until(t0 + upcoming, injector)
            if faults and (next_message is None or faults[0].at <= next_message.at):
                fault = faults.pop(0)
                self._apply(fault.kind, injector, platforms, telegram, log, lambda: self._handout(next_telegram, send))
            elif next_message is not None:
                send(next_message)
        while injector.redis_back_at is not None:
            self._wait_until(injector.redis_back_at, injector)
        log.add("traffic_end", f"{len(self.observations.sent)} messages sent so far")

    def _handout(self, next_telegram: Callable[[], PlannedMessage | None], send: Callable[..., str]) -> str:
        message = next_telegram()
        return "nothing left to send" if message is None else send(message, wait=True)

    def _apply(
        self,
        kind: FaultKind,
        injector: FaultInjector,
        platforms: Platforms,
        telegram: TelegramUsers,
        log: FaultLog,
        handout_send: Callable[[], str],
    ) -> None:
        if kind is FaultKind.WORKER_KILL:
            injector.kill_worker()
        elif kind is FaultKind.HANDOUT_KILL:
            injector.handout_kill(handout_send)
        elif kind in (FaultKind.REDIS_SIGTERM, FaultKind.REDIS_SIGKILL):
            if injector.redis_back_at is not None:
                injector.redis_start()  # still down from the last restart: bring it back first
            injector.redis_stop(signal.SIGTERM if kind is FaultKind.REDIS_SIGTERM else signal.SIGKILL)
        elif kind is FaultKind.TELEGRAM_REDELIVERY:
            tag = platforms.call(telegram.redeliver(self.rng), timeout_s=10)
            log.add("redelivery", f"Telegram serves the update of {tag} again")

    def _wait_until(self, when: float, injector: FaultInjector) -> None:
        while True:
            if injector.redis_due():
                injector.redis_start()
            injector.supervise()
            remaining = when - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(0.05, remaining))

    def _settle(self, telegram: TelegramUsers, slack: SlackUsers, injector: FaultInjector, log: FaultLog) -> None:
        """Until every message is answered (or the bound), then a quiet period in which late duplicates show."""
        total = self.config.messages
        while time.monotonic() < self.deadline:
            self._wait_until(time.monotonic() + 1.0, injector)
            if self._answered(telegram, slack) >= total:
                log.add(
                    "all_answered", f"{total} of {total}; watching {self.config.quiet_period_s:.0f}s for duplicates"
                )
                self._wait_until(time.monotonic() + self.config.quiet_period_s, injector)
                return
        log.add("settle_bound", f"gave up waiting: {self._answered(telegram, slack)} of {total} answered")

    def _answered(self, telegram: TelegramUsers, slack: SlackUsers) -> int:
        """How many distinct messages have some reply so far (a cheap probe: ``score`` does the real count)."""
        _, webchat = self.observations.snapshot()
        return len({r.ref for r in telegram.replies() + slack.replies() + webchat if r.ref is not None})


def _dump(path: Path, messages: list[SentMessage], replies: list[ReplySeen]) -> None:
    """The raw evidence, for a second look at a finding: what was sent, and every reply seen where."""
    evidence = {
        "sent": [asdict(m) for m in sorted(messages, key=lambda m: m.sent_at)],
        "replies": [asdict(r) for r in sorted(replies, key=lambda r: r.at)],
    }
    path.write_text(json.dumps(evidence, indent=1))


def _leftovers(workdir: Path) -> list[str]:
    """Every process still running that this run started: found by its data directory, so orphans count too."""
    mine = str(workdir.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if mine in cmdline or f"PATCHBAY_DATA_DIR={mine}" in environ:
            found.append(f"pid={entry.name} {cmdline[:120].strip()}")
    return found
