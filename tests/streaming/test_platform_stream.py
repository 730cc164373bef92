"""Streaming on each platform simulator through real gateway and worker processes, at 20 tokens/s.

For every platform: "typing…" before the first text, the first text within a second of the LLM's
first token, updates no faster than the shipped interval (the central send limits hold them to the
platform's), one persisted message holding the complete answer; and with a 429 on an update the
answer still arrives complete.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from adapters.sim.common import SentRecord
from adapters.sim.llm import SimulatorProcess, long_reply
from tests.e2e.harness import Cluster, wait_until
from tests.e2e.platform_helpers import Platforms, running_platforms
from tests.streaming.conftest import REPLY_CHARS, TOKEN_DELAY_MS

pytestmark = pytest.mark.e2e

EXPECTED = long_reply(REPLY_CHARS)
EDIT_INTERVAL_S = 1.0  # the shipped [streaming] edit_interval_s
_numbers = itertools.count(100)


class Run:
    def __init__(self, cluster: Cluster, platforms: Platforms, llm: SimulatorProcess) -> None:
        self.cluster, self.platforms, self.llm = cluster, platforms, llm

    def activity(self, platform: str, chat: str) -> list[SentRecord]:
        async def snapshot() -> list[SentRecord]:
            return [a for a in self.platforms.by_name(platform).activity if a.chat_id == chat]

        return self.platforms.call(snapshot())

    def persisted(self, platform: str, chat: str) -> list[SentRecord]:
        return [m for m in self.platforms.sent(platform) if m.chat_id == chat]

    def llm_timing(self) -> dict[str, float]:
        return dict(self.llm.stats()["streams"][-1])


@pytest.fixture(scope="module")
def run(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    llm = SimulatorProcess("--token-delay-ms", str(TOKEN_DELAY_MS), "--reply-chars", str(REPLY_CHARS))
    env = {
        "PATCHBAY_LLM_MODEL": "openai/sim-model",
        "PATCHBAY_LLM_API_BASE": llm.base_url,
        "OPENAI_API_KEY": "sk-test",
    }
    cluster = Cluster(redis_url, Path(tmp_path_factory.mktemp("streaming")))
    try:
        with running_platforms(cluster, env, workers=1) as platforms:
            run = Run(cluster, platforms, llm)
            _warm_up(run)
            yield run
    finally:
        llm.stop()
        client.close()


def _warm_up(run: Run) -> None:
    """One answer on each platform first: a worker's first call to a platform logs its client in
    (Telegram's getMe, Discord's /users/@me), a once-per-process cost the timed tests should not see."""
    telegram, discord, slack = run.platforms.telegram, run.platforms.discord, run.platforms.slack
    run.platforms.call(telegram.user_message(6099, "warm up", user_id=6099))
    asked = run.platforms.call(discord.user_message(0, "warm up", author_id=5099, dm=True))
    run.platforms.call(slack.user_message("D99", "warm up", user="U99", channel_type="im"))
    for platform, chat in (("telegram", "6099"), ("discord", str(asked["channel_id"])), ("slack", "D99")):
        wait_until(
            lambda p=platform, c=chat: [m for m in run.persisted(p, c) if m.text == EXPECTED],
            timeout_s=90,
            what=f"the {platform} warm-up answer",
        )


def _finished(run: Run, platform: str, chat: str, done: Any) -> list[SentRecord]:
    return wait_until(
        lambda: done(run.persisted(platform, chat)), timeout_s=60, interval_s=0.1, what=f"{platform} answer"
    ) and run.persisted(platform, chat)


def _check_rate(updates: list[SentRecord], window_s: float = 3.0) -> None:
    """At most one update per interval on average, over any window: arrival times jitter by a request's
    latency, so two can land closer than the interval they were sent apart."""
    times = [u.at for u in updates]
    allowed = window_s / EDIT_INTERVAL_S + 1
    for start in times:
        within = sum(1 for t in times if start <= t < start + window_s)
        assert within <= allowed, f"{within} updates within {window_s:.0f} s: faster than the streaming interval"


def _check_growing(texts: list[str], final: str) -> None:
    for text in texts:
        assert final.startswith(text), f"a partial text that is not the start of the answer: {text[:60]!r}"


def _telegram_private(run: Run, *, fail_first_draft: bool = False) -> None:
    chat = 6000 + next(_numbers)
    if fail_first_draft:
        run.platforms.telegram.fail(count=1, status=429, retry_after=1, method="sendMessageDraft")
    run.platforms.call(run.platforms.telegram.user_message(chat, f"tell me story {chat}", user_id=chat))
    sent = _finished(run, "telegram", str(chat), lambda messages: messages)
    timing = run.llm_timing()
    activity = run.activity("telegram", str(chat))
    drafts = [a for a in activity if a.method == "sendMessageDraft"]
    typing = [a for a in activity if a.method == "sendChatAction"]
    assert typing and drafts and typing[0].at < drafts[0].at
    assert len(sent) == 1 and sent[0].method == "sendMessage" and sent[0].text == EXPECTED
    assert len({d.message_id for d in drafts}) == 1  # one draft, updated
    _check_growing([d.text for d in drafts], EXPECTED)
    if not fail_first_draft:
        assert drafts[0].at - timing["first"] < 1.0
        assert len(drafts) >= 2
        _check_rate(drafts)
    assert sent[0].at - timing["last"] < 1.5


def test_telegram_private_chat_streams_a_draft_then_sends_one_message(run: Run) -> None:
    _telegram_private(run)


def test_telegram_draft_429_still_ends_with_the_complete_message(run: Run) -> None:
    _telegram_private(run, fail_first_draft=True)
    assert any(method == "sendMessageDraft" for _, method, _ in run.platforms.telegram.failures_served)


def test_telegram_group_sees_typing_then_the_complete_message(run: Run) -> None:
    chat = -7000 - next(_numbers)
    run.platforms.call(
        run.platforms.telegram.user_message(chat, f"tell me story {chat}", chat_type="group", mention=True)
    )
    sent = _finished(run, "telegram", str(chat), lambda messages: messages)
    activity = run.activity("telegram", str(chat))
    assert [a.method for a in activity if a.method != "sendChatAction"] == []  # no drafts in groups
    assert any(a.method == "sendChatAction" and a.at < sent[0].at for a in activity)
    assert len(sent) == 1 and sent[0].text == EXPECTED


def _discord(run: Run, *, fail_an_edit: bool = False) -> None:
    number = next(_numbers)
    if fail_an_edit:
        run.platforms.discord.fail(count=1, status=429, retry_after=1, method="edit_message")
    asked = run.platforms.call(
        run.platforms.discord.user_message(0, f"tell me story {number}", author_id=5000 + number, dm=True)
    )
    channel = str(asked["channel_id"])
    sent = _finished(run, "discord", channel, lambda ms: ms and ms[0].text == EXPECTED)
    timing = run.llm_timing()
    activity = run.activity("discord", channel)
    typing = [a for a in activity if a.method == "typing"]
    edits = [a for a in activity if a.method == "edit_message" and not a.raw.get("failed")]
    assert typing and typing[0].at < sent[0].at
    assert len(sent) == 1 and sent[0].text == EXPECTED and sent[0].reply_to == str(asked["id"])
    assert sent[0].at - timing["first"] < 1.0  # the post is the first visible text
    assert edits and edits[-1].text == EXPECTED
    _check_growing([sent[0].raw.get("content", "")] + [e.text for e in edits], EXPECTED)
    if not fail_an_edit:
        _check_rate([sent[0], *edits])
    assert edits[-1].at - timing["last"] < 1.5


def test_discord_posts_once_then_edits_within_the_limits(run: Run) -> None:
    _discord(run)


def test_discord_edit_429_still_ends_complete(run: Run) -> None:
    _discord(run, fail_an_edit=True)
    assert any(method == "edit_message" for _, method, _ in run.platforms.discord.failures_served)


def _slack(run: Run, *, fail_an_append: bool = False) -> None:
    number = next(_numbers)
    channel = f"D{number}"
    if fail_an_append:
        run.platforms.slack.fail(count=1, status=429, retry_after=1, method="chat.appendStream")
    run.platforms.call(
        run.platforms.slack.user_message(channel, f"tell me story {number}", user=f"U{number}", channel_type="im")
    )
    sent = _finished(run, "slack", channel, lambda ms: ms and not ms[0].raw.get("streaming", True))
    timing = run.llm_timing()
    activity = run.activity("slack", channel)
    status = [a for a in activity if a.method == "assistant.threads.setStatus"]
    started = [a for a in activity if a.method == "chat.startStream"]
    appends = [a for a in activity if a.method == "chat.appendStream"]
    assert status and started and status[0].at < started[0].at
    assert len(sent) == 1 and sent[0].method == "chat.startStream" and sent[0].text == EXPECTED
    assert sent[0].thread_id  # in the thread of the message answered
    if not fail_an_append:
        assert started[0].at - timing["first"] < 1.0
        assert appends
        _check_rate([*started, *appends])
    stopped = [a for a in activity if a.method == "chat.stopStream"]
    assert len(stopped) == 1 and stopped[0].at - timing["last"] < 1.5


def test_slack_streams_in_the_thread_and_stops_with_the_complete_answer(run: Run) -> None:
    _slack(run)


def test_slack_append_429_still_ends_complete(run: Run) -> None:
    _slack(run, fail_an_append=True)
    assert any(method == "chat.appendStream" for _, method, _ in run.platforms.slack.failures_served)


def test_slack_channel_stream_names_its_reader_and_stays_in_the_thread(run: Run) -> None:
    number = next(_numbers)
    channel = f"C{number}"
    event = run.platforms.call(
        run.platforms.slack.user_message(channel, f"tell me story {number}", user=f"U{number}", mention=True)
    )
    sent = _finished(run, "slack", channel, lambda ms: ms and not ms[0].raw.get("streaming", True))
    assert len(sent) == 1 and sent[0].text == EXPECTED and sent[0].thread_id == event["ts"]
    # Outside a DM Slack streams only to a named reader: the author of the message answered.
    assert sent[0].raw["recipient_user_id"] == f"U{number}" and sent[0].raw["recipient_team_id"]
