"""All three platforms at once through the registry, each isolated: a bad token or a dead platform stops nobody else."""

from __future__ import annotations

import httpx
import pytest

from adapters.base import AdapterState
from adapters.registry import platform_health, platform_routers, start_platforms, stop_platforms
from adapters.senders import close_senders, sender_for
from adapters.sim import DiscordSimulator, SlackSimulator, TelegramSimulator
from gateway.shared.envelope import Platform, Reply
from tests.adapters.helpers import RecordingAdmit, eventually, free_port, serve_routers

SECRET = "registry-signing-secret"


@pytest.fixture
async def simulators():
    port = free_port()
    events = f"http://127.0.0.1:{port}/slack/events"
    async with DiscordSimulator() as discord, TelegramSimulator() as telegram:
        async with SlackSimulator(signing_secret=SECRET, events_url=events) as slack:
            yield discord, telegram, slack, port


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, simulators):
    discord, telegram, slack, _ = simulators
    for key, value in {
        "DISCORD_BOT_TOKEN": "not-the-right-token",
        "DISCORD_API_BASE_URL": discord.api_base_url,
        "DISCORD_GATEWAY_URL": discord.gateway_url,
        "TELEGRAM_BOT_TOKEN": telegram.token,
        "TELEGRAM_API_BASE_URL": telegram.base_url,
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_BASE_URL": slack.base_url,
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("TELEGRAM_WEBHOOK_URL", "SLACK_APP_TOKEN", "DISCORD_CHANNELS"):
        monkeypatch.delenv(key, raising=False)


async def test_platforms_run_side_by_side_and_isolated(simulators, environment, redis_url: str, redis_client) -> None:
    _, telegram, slack, port = simulators
    admit = RecordingAdmit()
    routers = platform_routers()
    assert len(routers) == 1, "only Slack's events route: Telegram polls, Discord uses its gateway"
    async with serve_routers(*routers, port=port):
        try:
            await start_platforms(admit)
            await eventually(
                lambda: (
                    [h.state for h in platform_health().values()]
                    == [AdapterState.FAILED, AdapterState.CONNECTED, AdapterState.CONNECTED]
                ),
                what="discord FAILED (bad token), telegram and slack CONNECTED",
            )
            assert "token" in platform_health()["discord"].detail

            # Users write through the simulators' HTTP control API, as a developer would with curl.
            async with httpx.AsyncClient() as client:
                await client.post(f"{telegram.origin}/_sim/user_message", json={"chat_id": 42, "text": "hi telegram"})
                await client.post(
                    f"{slack.origin}/_sim/user_message", json={"channel": "C9", "text": "hi slack", "mention": True}
                )
            await eventually(lambda: len(admit.envelopes) == 2, what="one envelope per working platform")
            for envelope in admit.envelopes:
                sender = sender_for(envelope.platform, redis_url)
                assert sender is sender_for(envelope.platform, redis_url), "one sender per platform per process"
                await sender.send(Reply.answering(envelope, f"answer on {envelope.platform}"))
            async with httpx.AsyncClient() as client:
                telegram_sent = (await client.get(f"{telegram.origin}/_sim/sent")).json()
                slack_sent = (await client.get(f"{slack.origin}/_sim/sent")).json()
            assert [(s["chat_id"], s["text"]) for s in telegram_sent] == [("42", "answer on telegram")]
            assert [(s["chat_id"], s["text"]) for s in slack_sent] == [("C9", "answer on slack")]

            # Telegram goes away: Slack keeps answering, and health says which one is down.
            await telegram.stop()
            await slack.user_message("C9", "still there?", mention=True)
            await eventually(lambda: len(admit.envelopes) == 3, what="slack to keep working")
            assert admit.envelopes[-1].platform == Platform.SLACK
            await eventually(
                lambda: platform_health()["telegram"].state == AdapterState.RETRYING, what="telegram RETRYING"
            )
            assert platform_health()["slack"].state == AdapterState.CONNECTED
        finally:
            await stop_platforms()
            await close_senders()


def test_unknown_platform_has_no_sender(redis_url: str) -> None:
    with pytest.raises(LookupError):
        sender_for("myspace", redis_url)


async def test_a_misconfigured_platform_is_reported_and_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("DISCORD_BOT_TOKEN", "TELEGRAM_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-but-no-secret")
    try:
        assert await start_platforms(RecordingAdmit()) == []
        health = platform_health()
        assert health["slack"].state == AdapterState.FAILED and "SLACK_SIGNING_SECRET" in health["slack"].detail
        assert health["discord"].state == AdapterState.DISABLED
    finally:
        await stop_platforms()
