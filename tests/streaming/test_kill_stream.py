"""A worker SIGKILLed while its answer is showing: after redelivery, exactly one complete answer,
in the same platform message (Discord, Slack) or as the one message after the same draft (Telegram).

Real gateway and worker processes, the platform simulators, an LLM streaming at 10 tokens/s so the
kill lands mid-answer; the killed worker's message is redelivered by the ledger's reaper once its
lease lapses, to a worker started after the kill.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from adapters.sim.common import SentRecord
from adapters.sim.llm import SimulatorProcess, long_reply
from gateway.shared import keys
from tests.e2e.harness import Cluster, wait_until
from tests.e2e.platform_helpers import Platforms, running_platforms

pytestmark = pytest.mark.e2e

REPLY_CHARS = 300
EXPECTED = long_reply(REPLY_CHARS)
_numbers = itertools.count(300)


@pytest.fixture
def killable(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Iterator[tuple[Cluster, Platforms]]:
    llm = SimulatorProcess("--token-delay-ms", "100", "--reply-chars", str(REPLY_CHARS))
    env = {
        "PATCHBAY_LLM_MODEL": "openai/sim-model",
        "PATCHBAY_LLM_API_BASE": llm.base_url,
        "OPENAI_API_KEY": "sk-test",
        "PATCHBAY_CLAIM_LEASE": "2",
        "PATCHBAY_REAPER_INTERVAL": "0.5",
    }
    cluster = Cluster(redis_url, tmp_path / "data", env)
    try:
        with running_platforms(cluster, env, workers=1) as platforms:
            yield cluster, platforms
    finally:
        llm.stop()


def _kill_mid_stream(
    cluster: Cluster, platforms: Platforms, platform: str, chat: str, visible: Callable[[], bool]
) -> None:
    wait_until(visible, timeout_s=60, interval_s=0.05, what=f"{platform}: partial text on screen")
    cluster.kill_worker(cluster.workers[0])
    cluster.start_worker()


def _persisted(platforms: Platforms, platform: str, chat: str) -> list[SentRecord]:
    return [m for m in platforms.sent(platform) if m.chat_id == chat]


def _activity(platforms: Platforms, platform: str, chat: str) -> list[SentRecord]:
    async def snapshot() -> list[SentRecord]:
        return [a for a in platforms.by_name(platform).activity if a.chat_id == chat]

    return platforms.call(snapshot())


def _settled(client: redis.Redis) -> None:
    wait_until(lambda: client.zcard(keys.LEDGER_OPEN) == 0, timeout_s=90, what="the ledger to settle")


def test_discord_worker_killed_mid_stream_finishes_the_same_message(
    killable: tuple[Cluster, Platforms], redis_client: redis.Redis
) -> None:
    cluster, platforms = killable
    number = next(_numbers)
    asked = platforms.call(
        platforms.discord.user_message(0, f"a long story {number}", author_id=5000 + number, dm=True)
    )
    channel = str(asked["channel_id"])

    def partial() -> bool:
        messages = _persisted(platforms, "discord", channel)
        return bool(messages) and len(messages[0].text) < len(EXPECTED) // 2

    _kill_mid_stream(cluster, platforms, "discord", channel, partial)
    wait_until(
        lambda: any(m.text == EXPECTED for m in _persisted(platforms, "discord", channel)),
        timeout_s=90,
        what="the complete answer after redelivery",
    )
    _settled(redis_client)
    messages = _persisted(platforms, "discord", channel)
    assert len(messages) == 1 and messages[0].text == EXPECTED  # the same message, finished


def test_telegram_worker_killed_mid_draft_sends_exactly_one_message(
    killable: tuple[Cluster, Platforms], redis_client: redis.Redis
) -> None:
    cluster, platforms = killable
    chat = 8000 + next(_numbers)
    platforms.call(platforms.telegram.user_message(chat, f"a long story {chat}", user_id=chat))

    def drafting() -> bool:
        return any(a.method == "sendMessageDraft" for a in _activity(platforms, "telegram", str(chat)))

    _kill_mid_stream(cluster, platforms, "telegram", str(chat), drafting)
    wait_until(lambda: _persisted(platforms, "telegram", str(chat)), timeout_s=90, what="the answer after redelivery")
    _settled(redis_client)
    messages = _persisted(platforms, "telegram", str(chat))
    assert len(messages) == 1 and messages[0].text == EXPECTED
    drafts = [a for a in _activity(platforms, "telegram", str(chat)) if a.method == "sendMessageDraft"]
    assert len({d.message_id for d in drafts}) == 1  # the redelivered attempt continued the same draft


def test_slack_worker_killed_mid_stream_finishes_the_same_stream(
    killable: tuple[Cluster, Platforms], redis_client: redis.Redis
) -> None:
    cluster, platforms = killable
    number = next(_numbers)
    channel = f"D{number}"
    platforms.call(
        platforms.slack.user_message(channel, f"a long story {number}", user=f"U{number}", channel_type="im")
    )

    def streaming() -> bool:
        messages = _persisted(platforms, "slack", channel)
        return bool(messages) and len(messages[0].text) < len(EXPECTED) // 2

    _kill_mid_stream(cluster, platforms, "slack", channel, streaming)
    wait_until(
        lambda: any(m.text == EXPECTED for m in _persisted(platforms, "slack", channel)),
        timeout_s=90,
        what="the complete answer after redelivery",
    )
    _settled(redis_client)
    messages = _persisted(platforms, "slack", channel)
    assert len(messages) == 1 and messages[0].text == EXPECTED and not messages[0].raw.get("streaming")
