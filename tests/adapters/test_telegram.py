"""python-telegram-bot against the local Telegram simulator: polling, webhook, replies, splitting, 429, voice."""

from __future__ import annotations

import json

import httpx
import pytest

from adapters.base import AdapterState, Admission, AdmitResult
from adapters.egress_limits import EgressLimits
from adapters.sim.ogg import is_ogg, tiny_opus_ogg
from adapters.sim.telegram import DEFAULT_TELEGRAM_TOKEN, TelegramSimulator
from adapters.telegram import TelegramSettings, build_router
from adapters.telegram.adapter import TelegramAdapter
from adapters.telegram.sender import TelegramSender
from adapters.text import utf16_length
from gateway.shared.envelope import Attachment, Platform, Reply
from tests.adapters.helpers import RecordingAdmit, eventually, serve_routers


def settings_for(sim: TelegramSimulator, **extra: str) -> TelegramSettings:
    return TelegramSettings(bot_token=sim.token, api_base_url=sim.base_url, **extra)


@pytest.fixture
async def sim():
    async with TelegramSimulator() as simulator:
        yield simulator


@pytest.fixture
async def sender(sim: TelegramSimulator, redis_url: str, redis_client):
    telegram = TelegramSender(settings_for(sim), EgressLimits(redis_url))
    yield telegram
    await telegram.aclose()


@pytest.fixture
async def polling(sim: TelegramSimulator):
    import asyncio

    admit = RecordingAdmit()
    adapter = TelegramAdapter(settings_for(sim))
    task = asyncio.create_task(adapter.start(admit))
    await eventually(lambda: adapter.health().state == AdapterState.CONNECTED, what="telegram adapter to connect")
    yield adapter, admit
    await adapter.stop()
    await task


async def test_private_and_group_messages_become_envelopes(sim: TelegramSimulator, polling) -> None:
    adapter, admit = polling
    await sim.user_message(42, "hello there", user_id=7, user_name="alice")
    await sim.user_message(-100, "chatter not for the bot", chat_type="supergroup")
    await sim.user_message(-100, "what is up", chat_type="supergroup", mention=True, thread_id=5)
    await eventually(lambda: len(admit.envelopes) == 2, what="two envelopes")
    direct, group = admit.envelopes
    assert direct.platform == Platform.TELEGRAM
    assert direct.bot_id == str(sim.bot_id)
    assert (direct.conversation_id, direct.author_id, direct.author_name) == ("42", "7", "alice")
    assert direct.is_direct and direct.text == "hello there"
    assert group.conversation_id == "-100" and not group.is_direct
    assert group.text == "what is up", "the bot mention is stripped"
    assert group.mentions == [sim.username]
    assert group.thread_id == "5" and group.hints["message_thread_id"] == 5
    assert adapter.health().extra["ignored"] == 1


async def test_reply_to_the_bot_in_a_group_is_answered(sim: TelegramSimulator, polling, sender) -> None:
    _, admit = polling
    await sim.user_message(-200, "hey bot", chat_type="group", mention=True)
    await eventually(lambda: len(admit.envelopes) == 1, what="the mention")
    ids = await sender.send(Reply.answering(admit.envelopes[0], "hi!"))
    await sim.user_message(-200, "thanks", chat_type="group", reply_to=int(ids[0]))
    await eventually(lambda: len(admit.envelopes) == 2, what="the reply to the bot")
    assert admit.envelopes[1].reply_to == ids[0]


async def test_reply_lands_in_the_chat_and_thread_with_reference(sim: TelegramSimulator, polling, sender) -> None:
    _, admit = polling
    message = await sim.user_message(-300, "question", chat_type="supergroup", mention=True, thread_id=9)
    await eventually(lambda: len(admit.envelopes) == 1, what="the envelope")
    ids = await sender.send(Reply.answering(admit.envelopes[0], "the answer"))
    record = sim.sent[-1]
    assert record.method == "sendMessage" and record.message_id == ids[0]
    assert (record.chat_id, record.thread_id, record.text) == ("-300", "9", "the answer")
    assert record.reply_to == str(message["message_id"])


async def test_long_reply_is_split_under_4096_with_fences_balanced(sim: TelegramSimulator, sender) -> None:
    code = "```python\n" + "\n".join(f"print({i})  # line {i}" for i in range(300)) + "\n```"
    prose = " ".join(f"Sentence number {i} says something." for i in range(250))
    text = f"{prose}\n\n{code}\n\nDone."
    reply = Reply(platform=Platform.TELEGRAM, bot_id="1", conversation_id="55", in_reply_to_key="k", text=text)
    ids = await sender.send(reply)
    texts = [r.text for r in sim.sent]
    assert len(ids) == len(texts) >= 3
    assert all(utf16_length(t) <= 4096 for t in texts)
    assert all(sum(line.startswith("```") for line in t.split("\n")) % 2 == 0 for t in texts)
    assert texts[-1].endswith("Done.")
    assert "".join(texts).count("Sentence number") == 250


async def test_injected_429_is_honoured(sim: TelegramSimulator, sender) -> None:
    sim.fail(count=1, status=429, retry_after=1, method="sendMessage")
    reply = Reply(platform=Platform.TELEGRAM, bot_id="1", conversation_id="77", in_reply_to_key="k", text="hi")
    ids = await sender.send(reply)
    assert ids and sim.sent[-1].text == "hi"
    refused_at = sim.failures_served[0][0]
    assert sim.sent[-1].at >= refused_at + 0.95, "the retry waited for retry_after"


async def test_voice_reply_goes_out_as_send_voice_ogg(sim: TelegramSimulator, sender) -> None:
    voice = Attachment.from_bytes(tiny_opus_ogg(), "audio/ogg", is_voice=True, duration_s=1.0)
    reply = Reply(
        platform=Platform.TELEGRAM, bot_id="1", conversation_id="88", in_reply_to_key="k", text="", attachments=[voice]
    )
    await sender.send(reply)
    record = sim.sent[-1]
    assert record.method == "sendVoice" and record.chat_id == "88"
    assert record.files[0]["ogg_valid"] is True


async def test_inbound_voice_note_carries_the_file_id_and_never_the_token(
    sim: TelegramSimulator, polling, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers.downloads import download

    _, admit = polling
    await sim.user_message(43, "", voice=tiny_opus_ogg())
    await eventually(lambda: len(admit.envelopes) == 1, what="the voice envelope")
    envelope = admit.envelopes[0]
    voice = envelope.voice
    assert voice is not None and voice.file_id and voice.url is None and voice.is_voice
    # A Bot API file URL contains the token; the envelope (queued, stored in Redis) must not.
    assert sim.token not in json.dumps(envelope.to_json())
    # The worker resolves the id with its own token, at download time.
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", sim.token)
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", sim.base_url)
    assert is_ogg(await download(voice, envelope.platform))


async def test_rate_limit_notice_is_posted(sim: TelegramSimulator) -> None:
    import asyncio

    admit = RecordingAdmit(AdmitResult(Admission.RATE_LIMITED, "too fast", notice="Slow down a little."))
    adapter = TelegramAdapter(settings_for(sim))
    task = asyncio.create_task(adapter.start(admit))
    try:
        await sim.user_message(44, "spam")
        await sim.wait_sent(lambda sent: any(r.text == "Slow down a little." for r in sent))
        assert sim.sent[-1].chat_id == "44"
    finally:
        await adapter.stop()
        await task


async def test_webhook_mode_checks_the_secret(sim: TelegramSimulator) -> None:
    import asyncio

    admit = RecordingAdmit()
    # The gateway URL must exist before setWebhook: start the HTTP server first, on a known port.
    from tests.adapters.helpers import free_port

    port = free_port()
    settings = settings_for(sim, webhook_url=f"http://127.0.0.1:{port}/telegram/webhook", webhook_secret="s3cret")
    adapter = TelegramAdapter(settings)
    router = build_router(adapter)
    assert router is not None
    async with serve_routers(router, port=port) as base:
        task = asyncio.create_task(adapter.start(admit))
        try:
            await eventually(lambda: adapter.health().state == AdapterState.CONNECTED, what="webhook set")
            assert sim.webhook_url == settings.webhook_url and sim.webhook_secret == "s3cret"
            async with httpx.AsyncClient() as client:
                update = {"update_id": 1, "message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}}
                wrong = await client.post(
                    f"{base}/telegram/webhook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "nope"}
                )
                missing = await client.post(f"{base}/telegram/webhook", json=update)
                secret = {"X-Telegram-Bot-Api-Secret-Token": "s3cret"}
                not_json = await client.post(f"{base}/telegram/webhook", content=b"{nope", headers=secret)
                malformed = [
                    await client.post(f"{base}/telegram/webhook", json=body, headers=secret)
                    for body in (
                        [1, 2],
                        {"update_id": "one"},
                        {"update_id": 2, "message": "hello"},
                        {"update_id": 3, "message": {"message_id": 1}},
                    )
                ]
            assert (wrong.status_code, missing.status_code) == (403, 403)
            # With the right secret a malformed update is acknowledged (Telegram would resend a non-2xx
            # forever), counted and logged with its reason; nothing is admitted.
            assert [not_json.status_code, *(r.status_code for r in malformed)] == [200] * 5
            assert adapter.health().extra["rejected"] == 5
            assert admit.envelopes == []
            await sim.user_message(45, "through the webhook")
            await eventually(lambda: len(admit.envelopes) == 1, what="webhook delivery")
            assert admit.envelopes[0].text == "through the webhook" and sim.webhook_deliveries == [200]
        finally:
            await adapter.stop()
            await task


async def test_bad_token_is_reported_failed(sim: TelegramSimulator) -> None:
    import asyncio

    adapter = TelegramAdapter(TelegramSettings(bot_token="999:wrong", api_base_url=sim.base_url))
    task = asyncio.create_task(adapter.start(RecordingAdmit()))
    try:
        await eventually(lambda: adapter.health().state == AdapterState.FAILED, what="FAILED state")
        assert "token" in adapter.health().detail
    finally:
        await adapter.stop()
        await task


def test_default_token_looks_like_a_bot_token() -> None:
    assert DEFAULT_TELEGRAM_TOKEN.split(":")[0].isdigit()
