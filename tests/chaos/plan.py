"""The seeded schedule of a chaos run: which message is sent when and where, which fault strikes when.

A plan is a pure function of its ``ChaosConfig`` (seed included), so a run that found a loss can be
replayed with the same traffic and the same faults at the same offsets. What the processes do in
between is not seeded (the kernel schedules them), which is the point of running it several times.

Conversations are private chats, one user each (as in the measurement that opened this work): the
bulk on Telegram long polling, a few on Slack's Events API and a few on the web chat. Messages are
spread evenly over the conversations and uniformly over the traffic window; each carries its index
in its conversation so that order can be read off what the platform received.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from enum import StrEnum

__all__ = [
    "ChaosConfig",
    "Conversation",
    "FaultKind",
    "Plan",
    "PlannedFault",
    "PlannedMessage",
    "Platform",
    "make_plan",
]


class Platform(StrEnum):
    TELEGRAM = "telegram"
    SLACK = "slack"
    WEBCHAT = "webchat"


class FaultKind(StrEnum):
    WORKER_KILL = "worker_kill"  # SIGKILL a worker at a random moment, replace it at once
    HANDOUT_KILL = "handout_kill"  # SIGKILL the worker Redis is about to hand a message to, 3-10 ms after the push
    REDIS_SIGTERM = "redis_sigterm"  # a clean Redis restart (same port, same data)
    REDIS_SIGKILL = "redis_sigkill"  # a Redis crash and restart (the append-only file survives)
    TELEGRAM_REDELIVERY = "telegram_redelivery"  # Telegram serves an update again


@dataclass(frozen=True, slots=True)
class ChaosConfig:
    """Every knob of a run. The defaults are the scenario of the reliability issue's "done when"."""

    messages: int = 400
    duration_s: float = 60.0
    telegram_chats: int = 32
    slack_chats: int = 4
    webchat_chats: int = 4
    workers: int = 3
    kills: int = 10  # worker SIGKILLs in all, hand-out kills included
    handout_kills: int = 3
    redis_sigterm: int = 1
    redis_sigkill: int = 1
    redis_down_s: float = 1.0  # how long Redis stays down on each restart
    redeliveries: int = 20  # Telegram updates served again + Slack events retried
    visibility_timeout_s: int = 10
    llm_latency_ms: float = 200.0
    seed: int = 1
    startup_s: float = 180.0  # bound on starting the cluster
    settle_s: float = 180.0  # bound on waiting for stragglers after the traffic
    quiet_s: float | None = None  # watch for late duplicates once all is answered; None: visibility timeout + 5 s
    slack_gap_s: float = 1.0  # least time between two messages of one Slack conversation
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if self.messages < 1 or self.duration_s <= 0:
            problems.append("messages and duration_s must be positive")
        if self.telegram_chats + self.slack_chats + self.webchat_chats < 1:
            problems.append("at least one conversation is needed")
        if min(self.telegram_chats, self.slack_chats, self.webchat_chats) < 0:
            problems.append("conversation counts cannot be negative")
        if self.workers < 1:
            problems.append("at least one worker is needed")
        if not 0 <= self.handout_kills <= self.kills:
            problems.append("handout_kills must be between 0 and kills")
        if min(self.kills, self.redis_sigterm, self.redis_sigkill, self.redeliveries) < 0:
            problems.append("fault counts cannot be negative")
        if self.redeliveries and not (self.telegram_chats or self.slack_chats):
            problems.append("redeliveries need Telegram or Slack conversations")
        if self.handout_kills and not self.telegram_chats:
            problems.append("hand-out kills send a Telegram message: telegram_chats must be > 0")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def quiet_period_s(self) -> float:
        return self.visibility_timeout_s + 5.0 if self.quiet_s is None else self.quiet_s

    def with_seed(self, seed: int) -> ChaosConfig:
        return replace(self, seed=seed)


@dataclass(frozen=True, slots=True)
class Conversation:
    platform: Platform
    number: int  # 0.. within the platform

    @property
    def name(self) -> str:
        return f"{self.platform.value[:2]}{self.number:02d}"


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    at: float  # seconds after the start of the traffic
    conversation: Conversation
    index: int  # 1.. within the conversation
    redelivered: bool = False  # Slack: delivered twice, the second with X-Slack-Retry-Num

    @property
    def tag(self) -> str:
        """What the message says about itself; the LLM simulator repeats it in the reply."""
        return f"{self.conversation.name}.m{self.index:03d}"


@dataclass(frozen=True, slots=True)
class PlannedFault:
    at: float
    kind: FaultKind


@dataclass(frozen=True, slots=True)
class Plan:
    config: ChaosConfig
    conversations: list[Conversation]
    messages: list[PlannedMessage]  # by time
    faults: list[PlannedFault]  # by time

    def of(self, conversation: Conversation) -> list[PlannedMessage]:
        return [m for m in self.messages if m.conversation == conversation]


def make_plan(config: ChaosConfig) -> Plan:
    rng = random.Random(config.seed)
    conversations = (
        [Conversation(Platform.TELEGRAM, i) for i in range(config.telegram_chats)]
        + [Conversation(Platform.SLACK, i) for i in range(config.slack_chats)]
        + [Conversation(Platform.WEBCHAT, i) for i in range(config.webchat_chats)]
    )
    window = config.duration_s
    messages: list[PlannedMessage] = []
    for position, conversation in enumerate(conversations):
        count = config.messages // len(conversations) + (1 if position < config.messages % len(conversations) else 0)
        times = sorted(rng.uniform(0, window) for _ in range(count))
        if conversation.platform is Platform.SLACK:
            # Events of one channel travel as separate HTTP requests: spaced, so "in order" is well defined.
            times = _spaced(times, config.slack_gap_s)
        messages += [PlannedMessage(at, conversation, i + 1) for i, at in enumerate(times)]
    messages.sort(key=lambda m: (m.at, m.conversation.name, m.index))

    slack = [i for i, m in enumerate(messages) if m.conversation.platform is Platform.SLACK]
    telegram_share = config.telegram_chats / max(1, config.telegram_chats + config.slack_chats)
    slack_redeliveries = min(len(slack), config.redeliveries - round(config.redeliveries * telegram_share))
    if not config.telegram_chats:
        slack_redeliveries = min(len(slack), config.redeliveries)
    for i in rng.sample(slack, slack_redeliveries):
        messages[i] = replace(messages[i], redelivered=True)

    faults: list[PlannedFault] = []
    # Faults strike inside the traffic window, away from its very start so that the cluster has work in hand.
    lo, hi = 0.05 * window, 0.95 * window
    kinds = (
        [FaultKind.HANDOUT_KILL] * config.handout_kills
        + [FaultKind.WORKER_KILL] * (config.kills - config.handout_kills)
        + [FaultKind.TELEGRAM_REDELIVERY] * (config.redeliveries - slack_redeliveries)
    )
    faults += [PlannedFault(rng.uniform(lo, hi), kind) for kind in kinds]
    restarts = [FaultKind.REDIS_SIGTERM] * config.redis_sigterm + [FaultKind.REDIS_SIGKILL] * config.redis_sigkill
    rng.shuffle(restarts)
    # Redis restarts spread over the middle of the window, one per slot, so each outage is seen on its own.
    for slot, kind in enumerate(restarts):
        width = (hi - lo) / len(restarts)
        faults.append(PlannedFault(lo + width * (slot + rng.uniform(0.25, 0.75)), kind))
    faults.sort(key=lambda f: (f.at, f.kind.value))
    return Plan(config, conversations, messages, faults)


def _spaced(times: list[float], gap: float) -> list[float]:
    out: list[float] = []
    for at in times:
        out.append(max(at, out[-1] + gap) if out else at)
    return out
