"""slack-bolt and slack_sdk against the local Slack simulator: signed events, retries, replies, uploads."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from adapters.base import AdapterState
from adapters.egress_limits import EgressLimits
from adapters.sim.ogg import tiny_opus_ogg
from adapters.sim.slack import SlackSimulator, sign_slack_request
from adapters.slack import SlackSettings, build_router
from adapters.slack.adapter import SlackAdapter
from adapters.slack.sender import SlackSender
from gateway.shared.envelope import Attachment, Platform, Reply
from tests.adapters.helpers import RecordingAdmit, eventually, free_port, serve_routers

SECRET = "test-signing-secret"


@pytest.fixture
async def gateway():
    """Simulator -> uvicorn serving our /slack/events route -> SlackAdapter -> recording admit."""
    port = free_port()
    async with SlackSimulator(signing_secret=SECRET, events_url=f"http://127.0.0.1:{port}/slack/events") as sim:
        settings = SlackSettings(bot_token=sim.token, signing_secret=SECRET, api_base_url=sim.base_url)
        adapter = SlackAdapter(settings)
        admit = RecordingAdmit()
        router = build_router(adapter)
        assert router is not None
        async with serve_routers(router, port=port) as base:
            task = asyncio.create_task(adapter.start(admit))
            await eventually(lambda: adapter.health().state == AdapterState.CONNECTED, what="slack connected")
            yield sim, adapter, admit, base
            await adapter.stop()
            await task


@pytest.fixture
async def sender(gateway, redis_url: str, redis_client):
    sim = gateway[0]
    slack = SlackSender(SlackSettings(bot_token=sim.token, api_base_url=sim.base_url), EgressLimits(redis_url))
    yield slack
    await slack.aclose()


async def test_mention_and_dm_become_envelopes(gateway) -> None:
    sim, adapter, admit, _ = gateway
    await sim.user_message("C1", "what's new?", mention=True, thread_ts="100.000001")
    await sim.user_message("D1", "private question", channel_type="im", user="U0BOB")
    await sim.user_message("C1", "talking among humans")  # neither a mention nor a DM
    await eventually(lambda: len(admit.envelopes) == 2, what="two envelopes")
    mention, direct = admit.envelopes
    assert mention.platform == Platform.SLACK and mention.bot_id == sim.team_id
    assert (mention.conversation_id, mention.thread_id, mention.text) == ("C1", "100.000001", "what's new?")
    assert mention.mentions == [sim.bot_user_id] and not mention.is_direct
    assert mention.hints["thread_ts"] == "100.000001"
    assert direct.is_direct and direct.author_id == "U0BOB" and direct.text == "private question"
    assert direct.hints["thread_ts"] == direct.message_id, "a top-level message is answered in its own thread"
    await eventually(lambda: adapter.health().extra["ignored"] >= 1, what="the chatter to be ignored")


async def test_url_verification_is_answered(gateway) -> None:
    _, _, _, base = gateway
    body = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "x"}).encode()
    timestamp = str(int(time.time()))
    headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": sign_slack_request(SECRET, timestamp, body)}
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{base}/slack/events", content=body, headers=headers)
    assert response.status_code == 200 and response.json()["challenge"] == "abc123"


async def test_forged_signature_and_stale_timestamp_get_401(gateway) -> None:
    sim, _, admit, base = gateway
    event = {"type": "app_mention", "user": "U1", "text": f"<@{sim.bot_user_id}> hi", "ts": "1.1", "channel": "C1"}
    body = json.dumps({"type": "event_callback", "team_id": sim.team_id, "event": event, "event_id": "Ev1"}).encode()
    now = str(int(time.time()))
    stale = str(int(time.time()) - 301)
    async with httpx.AsyncClient() as client:
        forged = await client.post(
            f"{base}/slack/events",
            content=body,
            headers={"X-Slack-Request-Timestamp": now, "X-Slack-Signature": sign_slack_request("wrong", now, body)},
        )
        old = await client.post(
            f"{base}/slack/events",
            content=body,
            headers={"X-Slack-Request-Timestamp": stale, "X-Slack-Signature": sign_slack_request(SECRET, stale, body)},
        )
        good = await client.post(
            f"{base}/slack/events",
            content=body,
            headers={"X-Slack-Request-Timestamp": now, "X-Slack-Signature": sign_slack_request(SECRET, now, body)},
        )
    assert (forged.status_code, old.status_code, good.status_code) == (401, 401, 200)
    await eventually(lambda: len(admit.envelopes) == 1, what="the genuine event")
    assert admit.envelopes[0].message_id == "1.1"


async def test_four_deliveries_carry_one_message_id(gateway) -> None:
    sim, adapter, admit, _ = gateway
    await sim.user_message("C2", "once please", mention=True, deliveries=4)
    await eventually(lambda: len(admit.envelopes) == 4, what="four deliveries")
    assert [d["retry_num"] for d in sim.deliveries] == [0, 1, 2, 3]
    assert all(d["status"] == 200 for d in sim.deliveries)
    assert len({e.dedupe_key for e in admit.envelopes}) == 1
    assert adapter.health().extra["retries_seen"] == 3


async def test_reply_goes_into_the_thread_as_a_markdown_block(gateway, sender) -> None:
    sim, _, admit, _ = gateway
    await sim.user_message("C3", "explain", mention=True)
    await eventually(lambda: len(admit.envelopes) == 1, what="the mention")
    envelope = admit.envelopes[0]
    answer = "This is **important** and [a link](https://example.org) & <more>."
    ids = await sender.send(Reply.answering(envelope, answer))
    record = sim.sent[-1]
    assert record.method == "chat.postMessage" and record.message_id == ids[0]
    assert (record.chat_id, record.thread_id) == ("C3", envelope.message_id)
    assert record.raw["blocks"] == [{"type": "markdown", "text": answer}], "standard Markdown, nothing escaped"
    assert record.text == answer
    assert record.raw["text"] == "This is important and a link &amp; &lt;more&gt;.", "plain, escaped as Slack asks"


async def test_long_reply_is_split_with_fences_balanced(gateway, sender) -> None:
    sim = gateway[0]
    code = "```\n" + "\n".join(f"line {i} of the listing" for i in range(1200)) + "\n```"
    text = "Intro paragraph.\n\n" + code + "\n\n" + "Closing words. " * 400
    reply = Reply(
        platform=Platform.SLACK,
        bot_id="T",
        conversation_id="C4",
        in_reply_to_key="k",
        text=text,
        hints={"thread_ts": "5.5"},
    )
    ids = await sender.send(reply)
    texts = [r.text for r in sim.sent]
    assert len(ids) == len(texts) >= 3
    assert all(len(t) <= 12_000 for t in texts)
    assert all(t.count("```") % 2 == 0 for t in texts)
    assert all(r.thread_id == "5.5" for r in sim.sent)
    assert sum(t.count("line ") for t in texts) == 1200


async def test_injected_429_is_honoured(gateway, sender) -> None:
    sim = gateway[0]
    sim.fail(count=1, status=429, retry_after=1, method="chat.postMessage")
    reply = Reply(platform=Platform.SLACK, bot_id="T", conversation_id="C5", in_reply_to_key="k", text="hello")
    await sender.send(reply)
    assert sim.sent[-1].text == "hello"
    assert sim.sent[-1].at >= sim.failures_served[0][0] + 0.95


async def test_voice_reply_is_uploaded_into_the_thread(gateway, sender) -> None:
    sim = gateway[0]
    voice = Attachment.from_bytes(tiny_opus_ogg(), "audio/ogg", is_voice=True)
    reply = Reply(
        platform=Platform.SLACK,
        bot_id="T",
        conversation_id="C6",
        in_reply_to_key="k",
        text="listen",
        attachments=[voice],
        hints={"thread_ts": "9.9"},
    )
    await sender.send(reply)
    upload = sim.sent[-1]
    assert upload.method == "files.completeUploadExternal" and (upload.chat_id, upload.thread_id) == ("C6", "9.9")
    assert upload.files[0]["ogg_valid"] is True


async def test_bad_token_is_reported_failed() -> None:
    async with SlackSimulator() as sim:
        adapter = SlackAdapter(SlackSettings(bot_token="xoxb-wrong", signing_secret=SECRET, api_base_url=sim.base_url))
        task = asyncio.create_task(adapter.start(RecordingAdmit()))
        try:
            await eventually(lambda: adapter.health().state == AdapterState.FAILED, what="FAILED")
        finally:
            await adapter.stop()
            await task


async def test_socket_mode_receives_and_acks_events() -> None:
    async with SlackSimulator() as sim:
        settings = SlackSettings(bot_token=sim.token, app_token=sim.app_token, api_base_url=sim.base_url)
        adapter = SlackAdapter(settings)
        assert build_router(adapter) is None, "Socket Mode needs no HTTP route"
        admit = RecordingAdmit()
        task = asyncio.create_task(adapter.start(admit))
        try:
            await eventually(
                lambda: adapter.health().state == AdapterState.CONNECTED and bool(sim.sockets), what="socket"
            )
            await sim.user_message("D7", "over the socket", channel_type="im")
            await eventually(lambda: len(admit.envelopes) == 1, what="the socket event")
            assert admit.envelopes[0].text == "over the socket" and admit.envelopes[0].is_direct
            await eventually(lambda: len(sim.socket_acks) == 1, what="the ack")
            assert adapter.health().extra["mode"] == "socket"
        finally:
            await adapter.stop()
            await task
