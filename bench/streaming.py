"""Streaming benchmark (issue 15): how soon a user sees the answer, against the LLM's own timings.

The product as it ships (the default ``[streaming]`` settings: every platform streams, updates at
most once a second, the web chat every 50 ms): a real gateway and one real worker process, the
Telegram, Discord and Slack simulators and the web chat's streaming endpoint, and the LLM simulator
streaming at 20 tokens/s after a time to first token of 0.3 s, like a small remote model. Each
answer's baseline is the LLM's own time to first and to last token, measured by the simulator in
the same run; the figures are the deltas (goals: first visible text within 0.3 s of the first
token, the complete answer within 0.5 s of the last) and the ratio of the wait for the first words
to the wait for the whole answer (what streaming saves), plus the platform calls per answer.

    python bench/streaming.py [--answers 5]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.sim.common import SentRecord  # noqa: E402
from adapters.sim.llm import SimulatorProcess, long_reply  # noqa: E402
from gateway.embedded_redis import EmbeddedRedis  # noqa: E402
from tests.e2e.harness import WEBCHAT_API_KEY, Cluster, wait_until  # noqa: E402
from tests.e2e.platform_helpers import Platforms, running_platforms  # noqa: E402

TTFT_MS = 300
TOKEN_DELAY_MS = 50  # 20 tokens/s
REPLY_CHARS = 300  # about 55 tokens
EXPECTED = long_reply(REPLY_CHARS)
_numbers = itertools.count(1)


@dataclass(slots=True)
class Answer:
    sent_at: float
    llm_first: float
    llm_last: float
    visible: float
    complete: float
    calls: int

    @property
    def first_delta(self) -> float:
        return self.visible - self.llm_first

    @property
    def complete_delta(self) -> float:
        return self.complete - self.llm_last

    @property
    def wait_ratio(self) -> float:
        return (self.visible - self.sent_at) / (self.complete - self.sent_at)


@dataclass(slots=True)
class Series:
    name: str
    answers: list[Answer] = field(default_factory=list)


def _activity(platforms: Platforms, platform: str, chat: str) -> list[SentRecord]:
    async def snapshot() -> list[SentRecord]:
        return [a for a in platforms.by_name(platform).activity if a.chat_id == chat]

    return platforms.call(snapshot())


def _persisted(platforms: Platforms, platform: str, chat: str) -> list[SentRecord]:
    return [m for m in platforms.sent(platform) if m.chat_id == chat]


def _wait(condition: Callable[[], Any], what: str) -> Any:
    return wait_until(condition, timeout_s=120, interval_s=0.05, what=what)


def _llm(llm: SimulatorProcess, after: float) -> dict[str, float]:
    def stream() -> dict[str, float] | None:
        streams = [s for s in llm.stats()["streams"] if s["start"] >= after and s["last"]]
        return streams[-1] if streams else None

    return dict(_wait(stream, "the LLM's stream"))


def telegram(platforms: Platforms, llm: SimulatorProcess, group: bool) -> Answer:
    number = next(_numbers)
    chat = -9000 - number if group else 9000 + number
    started = time.time()
    kind = "group" if group else "private"
    platforms.call(
        platforms.telegram.user_message(chat, f"story {number}", user_id=9000 + number, chat_type=kind, mention=group)
    )
    final = _wait(lambda: _persisted(platforms, "telegram", str(chat)), "the Telegram answer")[0]
    timing = _llm(llm, started)
    activity = _activity(platforms, "telegram", str(chat))
    drafts = [a for a in activity if a.method == "sendMessageDraft"]
    assert final.text == EXPECTED, final.text
    visible = drafts[0].at if drafts else final.at
    return Answer(started, timing["first"], timing["last"], visible, final.at, len(activity) + 1)


def discord(platforms: Platforms, llm: SimulatorProcess) -> Answer:
    number = next(_numbers)
    started = time.time()
    asked = platforms.call(platforms.discord.user_message(0, f"story {number}", author_id=9000 + number, dm=True))
    channel = str(asked["channel_id"])
    _wait(lambda: [m for m in _persisted(platforms, "discord", channel) if m.text == EXPECTED], "the Discord answer")
    timing = _llm(llm, started)
    post = _persisted(platforms, "discord", channel)[0]
    activity = _activity(platforms, "discord", channel)
    edits = [a for a in activity if a.method == "edit_message"]
    complete = edits[-1].at if edits else post.at
    return Answer(started, timing["first"], timing["last"], post.at, complete, len(activity) + 1)


def slack(platforms: Platforms, llm: SimulatorProcess) -> Answer:
    number = next(_numbers)
    channel = f"D9{number}"
    started = time.time()
    platforms.call(platforms.slack.user_message(channel, f"story {number}", user=f"U9{number}", channel_type="im"))
    _wait(
        lambda: [m for m in _persisted(platforms, "slack", channel) if not m.raw.get("streaming", True)],
        "the Slack answer",
    )
    timing = _llm(llm, started)
    activity = _activity(platforms, "slack", channel)
    start = next(a for a in activity if a.method == "chat.startStream")
    stop = next(a for a in activity if a.method == "chat.stopStream")
    assert _persisted(platforms, "slack", channel)[0].text == EXPECTED
    return Answer(started, timing["first"], timing["last"], start.at, stop.at, len(activity))


def webchat(cluster: Cluster, llm: SimulatorProcess) -> Answer:
    number = next(_numbers)
    started = time.time()
    body = {"user_id": f"bench{number}", "text": f"story {number}", "message_id": f"m{number}"}
    headers = {"Authorization": f"Bearer {WEBCHAT_API_KEY}"}
    events: list[tuple[float, str, dict[str, Any]]] = []
    with httpx.stream("POST", cluster.url + "/api/chat/stream", json=body, headers=headers, timeout=120) as response:
        name = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                events.append((time.time(), name, json.loads(line[len("data: ") :])))
    timing = _llm(llm, started)
    texts = [at for at, name, _ in events if name == "text"]
    reply = next((at, data) for at, name, data in events if name == "reply")
    assert reply[1]["text"] == EXPECTED
    return Answer(started, timing["first"], timing["last"], texts[0] if texts else reply[0], reply[0], len(events))


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:+6.0f} ms (max {max(values) * 1000:+.0f})"


def report(series: list[Series]) -> None:
    print(
        f"\nLLM: {TTFT_MS} ms to the first token, then {1000 // TOKEN_DELAY_MS} tokens/s; {REPLY_CHARS}-character answers"
    )
    print("deltas against the LLM's own first / last token, in the same run (medians):\n")
    header = f"{'platform':<18}{'first text - LLM first token':<32}{'complete - LLM last token':<30}"
    print(header + f"{'first / complete wait':<24}platform calls per answer")
    for item in series:
        answers = item.answers
        print(
            f"{item.name:<18}{_ms([a.first_delta for a in answers]):<32}{_ms([a.complete_delta for a in answers]):<30}"
            f"{statistics.median(a.wait_ratio for a in answers):<24.2f}{statistics.median(a.calls for a in answers):.0f}"
        )
    print("\ngoals: first text within +300 ms of the LLM's first token, complete within +500 ms of its last")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=int, default=5, help="answers per platform")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        redis_server = EmbeddedRedis(Path(work) / "redis", persist=False).start()
        llm = SimulatorProcess(
            "--latency-ms", str(TTFT_MS), "--token-delay-ms", str(TOKEN_DELAY_MS), "--reply-chars", str(REPLY_CHARS)
        )
        env = {"PATCHBAY_LLM_MODEL": "openai/sim-model", "PATCHBAY_LLM_API_BASE": llm.base_url, "OPENAI_API_KEY": "sk"}
        cluster = Cluster(redis_server.url, Path(work) / "data", env)
        try:
            with running_platforms(cluster, env, workers=1) as platforms:
                runs: list[tuple[str, Callable[[], Answer]]] = [
                    ("telegram private", lambda: telegram(platforms, llm, group=False)),
                    ("telegram group", lambda: telegram(platforms, llm, group=True)),
                    ("discord", lambda: discord(platforms, llm)),
                    ("slack", lambda: slack(platforms, llm)),
                    ("web chat", lambda: webchat(cluster, llm)),
                ]
                series = [Series(name) for name, _ in runs]
                for item, (_, once) in zip(series, runs, strict=True):
                    for _ in range(args.answers):
                        item.answers.append(once())
            report(series)
        finally:
            llm.stop()
            redis_server.stop()


if __name__ == "__main__":
    main()
