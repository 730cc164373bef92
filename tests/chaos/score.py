"""Counting what a chaos run lost, duplicated and misordered, from what the platforms received.

The evidence is the platform's side: every message the bot sent to a simulator (Telegram, Slack),
every reply the workers published for the web chat, and what the web chat client itself got back.
A reply belongs to a message through the platform's own reference (Telegram's ``reply_to``, Slack's
thread), and its text must carry that message's tag (the LLM simulator repeats the user's words) or
be the pipeline's apology; anything else is a *stray* reply, which fails the run like a loss does.

- **lost**: sent, never answered.
- **duplicated**: answered more than once.
- **out of order**: in its conversation, its first reply came after the first reply to a message
  the platform had handed over later (order of hand-over: Telegram's update order; Slack's first
  acknowledged delivery; the web chat's accepted request).
- **latency**: from the user's message to the first reply the platform received.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

__all__ = ["ReplySeen", "Score", "SentMessage", "percentile", "score"]


@dataclass(slots=True)
class SentMessage:
    conversation: str
    index: int
    platform: str
    tag: str
    sent_at: float  # the user's first attempt
    accepted_at: float | None = None  # when the platform handed it over for good (None: never)
    log_key: str = ""  # a substring of the message's key in the gateway's and workers' logs
    redelivered: int = 0
    resends: int = 0  # the web chat client sent it again after a refusal

    @property
    def ref(self) -> tuple[str, int]:
        return (self.conversation, self.index)


@dataclass(frozen=True, slots=True)
class ReplySeen:
    ref: tuple[str, int] | None  # None: it answers no message we sent
    at: float
    text: str
    source: str  # "telegram", "slack", "webchat-egress", "webchat-client"


@dataclass(slots=True)
class Score:
    sent: int
    answered: int
    lost: list[tuple[str, int]]
    duplicated: dict[tuple[str, int], int]  # ref -> replies
    out_of_order: list[tuple[str, int]]
    misordered_conversations: dict[str, list[int]]  # conversation -> its indices in arrival order
    stray: list[ReplySeen]
    apologies: int
    latencies_s: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.out_of_order or self.stray)

    def latency(self, q: float) -> float | None:
        return percentile(self.latencies_s, q)

    def summary(self) -> dict[str, object]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 2)

        return {
            "sent": self.sent,
            "answered": self.answered,
            "lost": len(self.lost),
            "duplicated": len(self.duplicated),
            "out_of_order": len(self.out_of_order),
            "stray_replies": len(self.stray),
            "apologies": self.apologies,
            "p50_s": rounded(self.latency(0.50)),
            "p95_s": rounded(self.latency(0.95)),
            "max_s": rounded(max(self.latencies_s) if self.latencies_s else None),
        }


def percentile(values: list[float], q: float) -> float | None:
    """Nearest rank: the smallest value with at least ``q`` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def score(messages: list[SentMessage], replies: list[ReplySeen], apology: str) -> Score:
    """``replies`` are every observation, in any order; ``webchat-client`` ones prove an answer but are not
    counted towards duplicates (the client sees one stored reply however many times it was sent)."""
    by_ref = {m.ref: m for m in messages}
    egress: dict[tuple[str, int], list[ReplySeen]] = defaultdict(list)
    client: dict[tuple[str, int], float] = {}
    stray: list[ReplySeen] = []
    apologies = 0
    for reply in sorted(replies, key=lambda r: r.at):
        message = by_ref.get(reply.ref) if reply.ref is not None else None
        is_apology = reply.text.strip() == apology
        if message is None or not (message.tag in reply.text or is_apology):
            stray.append(reply)
            continue
        if reply.source == "webchat-client":
            client.setdefault(message.ref, reply.at)
            continue
        apologies += int(is_apology and not egress[message.ref])
        egress[message.ref].append(reply)

    first: dict[tuple[str, int], float] = {}
    for ref in by_ref:
        times = [r.at for r in egress.get(ref, [])] + ([client[ref]] if ref in client else [])
        if times:
            first[ref] = min(times)
    lost = sorted(ref for ref in by_ref if ref not in first)
    duplicated = {ref: len(seen) for ref, seen in egress.items() if len(seen) > 1}

    out_of_order: list[tuple[str, int]] = []
    misordered: dict[str, list[int]] = {}
    conversations: dict[str, list[SentMessage]] = defaultdict(list)
    for message in messages:
        if message.ref in first:
            conversations[message.conversation].append(message)
    for name, answered in conversations.items():
        arrival = sorted(answered, key=lambda m: first[m.ref])
        latest: tuple[float, int] | None = None
        bad = False
        for message in arrival:
            handed = (message.accepted_at if message.accepted_at is not None else message.sent_at, message.index)
            if latest is not None and handed < latest:
                out_of_order.append(message.ref)
                bad = True
            else:
                latest = handed
        if bad:
            misordered[name] = [m.index for m in arrival]

    latencies = sorted(first[ref] - by_ref[ref].sent_at for ref in first)
    return Score(
        sent=len(messages),
        answered=len(first),
        lost=lost,
        duplicated=duplicated,
        out_of_order=sorted(out_of_order),
        misordered_conversations=misordered,
        stray=stray,
        apologies=apologies,
        latencies_s=latencies,
    )
