"""discord.py against the local Discord simulator: gateway handshake, envelopes, REST replies, 429, uploads."""

from __future__ import annotations

import asyncio

import pytest

from adapters.base import AdapterState
from adapters.discord import DiscordSettings
from adapters.discord.adapter import DiscordAdapter
from adapters.discord.sender import DiscordSender
from adapters.egress_limits import EgressLimits
from adapters.sim.discord import MESSAGE_CONTENT_INTENT, DiscordSimulator
from adapters.sim.ogg import tiny_opus_ogg
from gateway.shared.envelope import Attachment, Platform, Reply
from tests.adapters.helpers import RecordingAdmit, eventually


def settings_for(sim: DiscordSimulator, **extra: object) -> DiscordSettings:
    return DiscordSettings(bot_token=sim.token, api_base_url=sim.api_base_url, gateway_url=sim.gateway_url, **extra)


@pytest.fixture
async def sim():
    async with DiscordSimulator() as simulator:
        yield simulator


@pytest.fixture
async def connected(sim: DiscordSimulator):
    admit = RecordingAdmit()
    adapter = DiscordAdapter(settings_for(sim, channels="811"))
    task = asyncio.create_task(adapter.start(admit))
    await eventually(lambda: adapter.health().state == AdapterState.CONNECTED, what="discord ready")
    yield adapter, admit
    await adapter.stop()
    await task


@pytest.fixture
async def sender(sim: DiscordSimulator, redis_url: str, redis_client):
    discord_sender = DiscordSender(settings_for(sim), EgressLimits(redis_url))
    yield discord_sender
    await discord_sender.aclose()


async def test_identify_asks_for_message_content(sim: DiscordSimulator, connected) -> None:
    assert sim.identifies[-1]["token"] == sim.token
    assert sim.identifies[-1]["intents"] & MESSAGE_CONTENT_INTENT


async def test_dm_mention_and_configured_channel_are_answered(sim: DiscordSimulator, connected) -> None:
    adapter, admit = connected
    await sim.user_message(810, "humans talking")  # not addressed: ignored
    await sim.user_message(810, "hello bot", mention=True, author_id=502, author="bob")
    await sim.user_message(0, "a secret", dm=True, author_id=503, author="carol")
    await sim.user_message(811, "no mention needed here")  # a configured channel
    await sim.user_message(810, "in a thread", thread_id=820, mention=True)
    await eventually(lambda: len(admit.envelopes) == 4, what="four envelopes")
    mention, direct, channel, threaded = admit.envelopes
    assert mention.platform == Platform.DISCORD and mention.bot_id == str(sim.bot_id)
    assert (mention.conversation_id, mention.text, mention.author_name) == ("810", "hello bot", "bob")
    assert mention.mentions == [str(sim.bot_id)] and mention.hints["guild_id"] == str(sim.guild_id)
    assert direct.is_direct and direct.text == "a secret" and direct.author_id == "503"
    assert channel.conversation_id == "811" and channel.text == "no mention needed here"
    assert (threaded.conversation_id, threaded.thread_id) == ("810", "820")
    await eventually(lambda: adapter.health().extra["ignored"] == 1, what="the chatter to be ignored")


async def test_reply_references_the_message_and_goes_into_the_thread(sim: DiscordSimulator, connected, sender) -> None:
    _, admit = connected
    await sim.user_message(810, "question", mention=True)
    await sim.user_message(810, "thread question", thread_id=820, mention=True)
    await eventually(lambda: len(admit.envelopes) == 2, what="two envelopes")
    plain, threaded = admit.envelopes
    first = await sender.send(Reply.answering(plain, "answer"))
    second = await sender.send(Reply.answering(threaded, "thread answer"))
    by_id = {r.message_id: r for r in sim.sent}
    assert (by_id[first[0]].chat_id, by_id[first[0]].reply_to, by_id[first[0]].text) == (
        "810",
        plain.message_id,
        "answer",
    )
    assert (by_id[second[0]].chat_id, by_id[second[0]].thread_id) == ("820", "820")
    assert by_id[second[0]].reply_to == threaded.message_id


async def test_long_reply_is_split_under_2000(sim: DiscordSimulator, sender) -> None:
    code = "```py\n" + "\n".join(f"value_{i} = {i} * 2" for i in range(200)) + "\n```"
    text = ("A paragraph of prose that goes on. " * 40) + "\n\n" + code + "\n\nThat is all."
    reply = Reply(
        platform=Platform.DISCORD, bot_id="1", conversation_id="810", reply_to="42", in_reply_to_key="k", text=text
    )
    ids = await sender.send(reply)
    texts = [r.text for r in sim.sent]
    assert len(ids) == len(texts) >= 3
    assert all(len(t) <= 2000 for t in texts)
    assert all(sum(line.startswith("```") for line in t.split("\n")) % 2 == 0 for t in texts)
    assert sim.sent[0].reply_to == "42" and all(r.reply_to is None for r in sim.sent[1:])
    assert sum(t.count("value_") for t in texts) == 200


async def test_injected_429_is_honoured_and_shared(sim: DiscordSimulator, sender, redis_client) -> None:
    sim.fail(count=1, status=429, retry_after=1.0)
    reply = Reply(platform=Platform.DISCORD, bot_id="1", conversation_id="811", in_reply_to_key="k", text="patience")
    ids = await sender.send(reply)
    assert ids and sim.sent[-1].text == "patience"
    assert sim.sent[-1].at >= sim.failures_served[0][0] + 0.95
    assert sender._limits.pauses == 1, "the 429 set the shared pause for the other workers"


async def test_voice_reply_is_uploaded(sim: DiscordSimulator, sender) -> None:
    voice = Attachment.from_bytes(tiny_opus_ogg(), "audio/ogg", is_voice=True)
    reply = Reply(
        platform=Platform.DISCORD,
        bot_id="1",
        conversation_id="810",
        reply_to="7",
        in_reply_to_key="k",
        text="here you go",
        attachments=[voice],
    )
    await sender.send(reply)
    record = sim.sent[-1]
    assert record.text == "here you go" and record.reply_to == "7"
    assert record.files[0]["name"].endswith(".ogg") and record.files[0]["ogg_valid"] is True


async def test_inbound_voice_message_is_the_envelope_voice(sim: DiscordSimulator, connected) -> None:
    _, admit = connected
    await sim.user_message(0, "", dm=True, voice=tiny_opus_ogg())
    await eventually(lambda: len(admit.envelopes) == 1, what="the voice envelope")
    voice = admit.envelopes[0].voice
    assert voice is not None and voice.is_voice and voice.mime_type == "audio/ogg" and voice.url


async def test_bad_token_fails_clearly(sim: DiscordSimulator) -> None:
    adapter = DiscordAdapter(
        DiscordSettings(bot_token="wrong", api_base_url=sim.api_base_url, gateway_url=sim.gateway_url)
    )
    task = asyncio.create_task(adapter.start(RecordingAdmit()))
    try:
        await eventually(lambda: adapter.health().state == AdapterState.FAILED, what="FAILED")
    finally:
        await adapter.stop()
        await task
