"""👍/👎 on the bot's replies become ratings: discord.py and slack-bolt against the simulators (issue 5)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from adapters.base import AdapterState, Rating, rating_value
from adapters.discord import DiscordSettings
from adapters.discord.adapter import DiscordAdapter
from adapters.discord.sender import DiscordSender
from adapters.egress_limits import EgressLimits
from adapters.registry import platform_routers, start_platforms, stop_platforms
from adapters.sim.discord import DiscordSimulator
from adapters.sim.slack import SlackSimulator
from adapters.slack import SlackSettings, build_router
from adapters.slack.adapter import SlackAdapter
from adapters.slack.sender import SlackSender
from gateway.shared.envelope import Platform, Reply
from tests.adapters.helpers import RecordingAdmit, eventually, free_port, serve_routers

SECRET = "reactions-signing-secret"


class RecordingRate:
    """The analytics sink, reduced to: remember each rating."""

    def __init__(self) -> None:
        self.ratings: list[Rating] = []

    async def __call__(self, rating: Rating) -> None:
        self.ratings.append(rating)


def by_user(ratings: list[Rating]) -> list[Rating]:
    # Event handlers run as separate tasks in both libraries: arrival order is not a contract.
    return sorted(ratings, key=lambda rating: rating.user_id)


def test_rating_value_knows_thumbs_only() -> None:
    ups = ["👍", "👍🏽", "👍\ufe0f", "+1", "thumbsup", "+1::skin-tone-2", "thumbsup::skin-tone-6", ":+1:"]
    downs = ["👎", "👎🏿", "-1", "thumbsdown", "-1::skin-tone-4", ":thumbsdown:"]
    others = ["", "heart", "❤️", "🎉", "+", "-", "1", "thumbs", "smile::skin-tone-2", "👍👍", "🏽"]
    assert [rating_value(e) for e in ups] == [1] * len(ups)
    assert [rating_value(e) for e in downs] == [-1] * len(downs)
    assert [rating_value(e) for e in others] == [None] * len(others)


# --------------------------------------------------------------------------- Discord


@pytest.fixture
async def discord_sim():
    async with DiscordSimulator() as simulator:
        yield simulator


def discord_settings(sim: DiscordSimulator) -> DiscordSettings:
    return DiscordSettings(bot_token=sim.token, api_base_url=sim.api_base_url, gateway_url=sim.gateway_url)


async def test_discord_thumbs_on_the_bots_reply_become_ratings(
    discord_sim: DiscordSimulator, redis_url: str, redis_client
) -> None:
    sim = discord_sim
    rate = RecordingRate()
    adapter = DiscordAdapter(discord_settings(sim))
    task = asyncio.create_task(adapter.start(RecordingAdmit(), rate))
    sender = DiscordSender(discord_settings(sim), EgressLimits(redis_url))
    try:
        await eventually(lambda: adapter.health().state == AdapterState.CONNECTED, what="discord ready")
        reply_ids = await sender.send(
            Reply(platform=Platform.DISCORD, bot_id="1", conversation_id="810", in_reply_to_key="k", text="answer")
        )
        human = await sim.user_message(810, "a human's message", author_id=509)

        await sim.user_reaction(810, reply_ids[0], 502, "👍")
        await sim.user_reaction(810, reply_ids[0], 503, "👎🏽")
        await sim.user_reaction(810, reply_ids[0], 504, "🎉")  # another emoji
        await sim.user_reaction(810, human["id"], 505, "👍")  # not the bot's message
        await sim.user_reaction(810, reply_ids[0], sim.bot_id, "👍")  # the bot's own reaction
        await sim.user_reaction(810, reply_ids[0], 506, "thumbsup:123456789")  # a custom emoji named like one

        await eventually(
            lambda: adapter.health().extra["ratings"] + adapter.health().extra["reactions_ignored"] == 6,
            what="all six reactions handled",
        )
        assert by_user(rate.ratings) == [
            Rating("discord", reply_ids[0], "502", 1),
            Rating("discord", reply_ids[0], "503", -1),
        ]
        assert adapter.health().extra["ignored_reactions"] == {
            "other_emoji": 1,
            "not_our_message": 1,
            "own_reaction": 1,
            "custom_emoji": 1,
        }
    finally:
        await sender.aclose()
        await adapter.stop()
        await task


async def test_discord_reaction_through_the_control_api_in_a_dm(discord_sim: DiscordSimulator) -> None:
    sim = discord_sim
    rate = RecordingRate()
    adapter = DiscordAdapter(discord_settings(sim))
    task = asyncio.create_task(adapter.start(RecordingAdmit(), rate))
    try:
        await eventually(lambda: adapter.health().state == AdapterState.CONNECTED, what="discord ready")
        # A message the simulator never saw has no message_author_id: accepted without a fetch.
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"{sim.origin}/_sim/user_reaction",
                json={"channel_id": "7502", "message_id": "4242", "user_id": "502", "emoji": "👎"},
            )
        assert response.status_code == 200 and "guild_id" not in response.json()["result"]
        await eventually(lambda: len(rate.ratings) == 1, what="the DM rating")
        assert rate.ratings == [Rating("discord", "4242", "502", -1)]
    finally:
        await adapter.stop()
        await task


async def test_discord_rating_sink_failure_is_counted(discord_sim: DiscordSimulator) -> None:
    sim = discord_sim

    async def broken_sink(rating: Rating) -> None:
        raise RuntimeError("analytics is down")

    adapter = DiscordAdapter(discord_settings(sim))
    task = asyncio.create_task(adapter.start(RecordingAdmit(), broken_sink))
    try:
        await eventually(lambda: adapter.health().state == AdapterState.CONNECTED, what="discord ready")
        await sim.user_reaction(810, "4243", 502, "👍")
        await eventually(lambda: adapter.health().extra["rating_errors"] == 1, what="the failed rating counted")
        assert adapter.health().extra["ratings"] == 0
        assert adapter.health().state == AdapterState.CONNECTED
    finally:
        await adapter.stop()
        await task


# --------------------------------------------------------------------------- Slack


async def react_and_check_slack(sim: SlackSimulator, adapter: SlackAdapter, rate: RecordingRate, reply_ts: str) -> None:
    """Six reactions, two of them ratings; over HTTP the first rating is delivered twice, as Slack's retries do."""
    human = await sim.user_message("C1", "a human's message", user="U0ALICE")
    # The bot's own reaction: slack-bolt's IgnoringSelfEvents acks it before any listener, and to_rating
    # would refuse it too; sent first so that it cannot be the straggler that makes a count look right.
    await sim.user_reaction("C1", reply_ts, sim.bot_user_id, "+1")
    await sim.user_reaction("C1", reply_ts, "U0BOB", "+1", deliveries=None if adapter.socket_mode else 2)
    await sim.user_reaction("C1", reply_ts, "U0CAROL", "thumbsdown::skin-tone-3")
    await sim.user_reaction("C1", reply_ts, "U0DAVE", "heart")  # another emoji
    await sim.user_reaction("C1", human["ts"], "U0EVE", "+1")  # not the bot's message
    redelivered = 0 if adapter.socket_mode else 1
    await eventually(
        lambda: adapter.health().extra["ratings"] + adapter.health().extra["reactions_ignored"] == 4 + redelivered,
        what="every reaction delivery handled",
    )
    assert by_user(rate.ratings) == [
        Rating("slack", reply_ts, "U0BOB", 1, "T0SIM"),
        Rating("slack", reply_ts, "U0CAROL", -1, "T0SIM"),
    ]
    ignored = adapter.health().extra["ignored_reactions"]
    assert ignored == {"other_emoji": 1, "not_our_message": 1, **({"redelivered": 1} if redelivered else {})}


async def test_slack_events_api_thumbs_become_ratings(redis_url: str, redis_client) -> None:
    port = free_port()
    async with SlackSimulator(signing_secret=SECRET, events_url=f"http://127.0.0.1:{port}/slack/events") as sim:
        adapter = SlackAdapter(SlackSettings(bot_token=sim.token, signing_secret=SECRET, api_base_url=sim.base_url))
        router = build_router(adapter)
        assert router is not None
        rate = RecordingRate()
        sender = SlackSender(SlackSettings(bot_token=sim.token, api_base_url=sim.base_url), EgressLimits(redis_url))
        async with serve_routers(router, port=port):
            task = asyncio.create_task(adapter.start(RecordingAdmit(), rate))
            try:
                await eventually(lambda: adapter.health().state == AdapterState.CONNECTED, what="slack connected")
                reply = Reply(
                    platform=Platform.SLACK,
                    bot_id=sim.team_id,
                    conversation_id="C1",
                    in_reply_to_key="k",
                    text="answer",
                    hints={"thread_ts": "1.000001"},
                )
                reply_ids = await sender.send(reply)
                await react_and_check_slack(sim, adapter, rate, reply_ids[0])
                assert [d["retry_num"] for d in sim.deliveries if d["status"] == 200].count(1) == 1
            finally:
                await sender.aclose()
                await adapter.stop()
                await task


async def test_slack_socket_mode_thumbs_become_ratings(redis_url: str, redis_client) -> None:
    async with SlackSimulator() as sim:
        settings = SlackSettings(bot_token=sim.token, app_token=sim.app_token, api_base_url=sim.base_url)
        adapter = SlackAdapter(settings)
        rate = RecordingRate()
        sender = SlackSender(SlackSettings(bot_token=sim.token, api_base_url=sim.base_url), EgressLimits(redis_url))
        task = asyncio.create_task(adapter.start(RecordingAdmit(), rate))
        try:
            await eventually(
                lambda: adapter.health().state == AdapterState.CONNECTED and bool(sim.sockets), what="socket"
            )
            reply = Reply(
                platform=Platform.SLACK, bot_id=sim.team_id, conversation_id="C1", in_reply_to_key="k", text="hi"
            )
            reply_ids = await sender.send(reply)
            await react_and_check_slack(sim, adapter, rate, reply_ids[0])
        finally:
            await sender.aclose()
            await adapter.stop()
            await task


async def test_start_platforms_hands_rate_to_the_adapters(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    async with SlackSimulator(signing_secret=SECRET, events_url=f"http://127.0.0.1:{port}/slack/events") as sim:
        for key in ("DISCORD_BOT_TOKEN", "TELEGRAM_BOT_TOKEN", "SLACK_APP_TOKEN"):
            monkeypatch.delenv(key, raising=False)
        monkeypatch.setenv("SLACK_BOT_TOKEN", sim.token)
        monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
        monkeypatch.setenv("SLACK_API_BASE_URL", sim.base_url)
        rate = RecordingRate()
        try:
            async with serve_routers(*platform_routers(), port=port):
                started = await start_platforms(RecordingAdmit(), rate)
                assert [adapter.platform for adapter in started] == ["slack"]
                await eventually(lambda: started[0].health().state == AdapterState.CONNECTED, what="slack connected")
                async with httpx.AsyncClient() as client:
                    response = await client.post(
                        f"{sim.origin}/_sim/user_reaction",
                        json={
                            "channel": "C2",
                            "ts": "7.000001",
                            "user": "U0BOB",
                            "reaction": "-1",
                            "item_user": "U0BOT",
                        },
                    )
                assert response.status_code == 200
                await eventually(lambda: len(rate.ratings) == 1, what="the rating through the registry")
                assert rate.ratings == [Rating("slack", "7.000001", "U0BOB", -1, "T0SIM")]
        finally:
            await stop_platforms()
