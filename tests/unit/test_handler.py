"""The base handler answers every message: a model answer, a command answer, or an apology with a reason."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from redis.asyncio import Redis

from adapters.sim.llm import LLMSimulator
from gateway.shared.envelope import Attachment, Envelope, Platform
from workers.handler import APOLOGY, ChatHandler, HandlerConfig, VoiceReplies
from workers.llm.client import LiteLLMClient
from workers.memory import SqlMemory, build_base_memory
from workers.voice.preferences import VoicePreferences
from workers.voice.transcribe import VOICE_INPUT_NOT_SET_UP


def _envelope(text: str, **changes: Any) -> Envelope:
    return Envelope(
        platform=Platform.TELEGRAM,
        bot_id="b",
        conversation_id="c1",
        message_id=changes.pop("message_id", "m1"),
        author_id="u1",
        is_direct=True,
        text=text,
        **changes,
    )


@pytest.fixture
async def memory(tmp_path: Path) -> AsyncIterator[SqlMemory]:
    store = build_base_memory(f"sqlite+aiosqlite:///{tmp_path / 'memory.db'}")
    await store.init()
    yield store
    await store.aclose()


@pytest.fixture
async def simulator() -> AsyncIterator[LLMSimulator]:
    async with LLMSimulator(port=0) as sim:
        yield sim


class SilentVoice:
    """Counts what it is asked to say; returns a tiny valid-looking clip (the real engine is tested in tests/voice)."""

    def __init__(self) -> None:
        self.spoken: list[str] = []

    async def speak(self, text: str, style: Any) -> Any:
        from workers.components import Audio

        self.spoken.append(text)
        return Audio(b"RIFF....WAVEfmt ", "audio/wav", 0.1)


def _handler(llm: Any, memory: SqlMemory, voice: VoiceReplies | None = None) -> ChatHandler:
    return ChatHandler(llm, memory, HandlerConfig(system_prompt="be brief"), voice=voice)


async def test_answer_and_history(simulator: LLMSimulator, memory: SqlMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    handler = _handler(LiteLLMClient("openai/sim-model", api_base=simulator.base_url), memory)
    reply = await handler.handle(_envelope("my cat is Miso"))
    assert reply.reason is None and "my cat is Miso" in reply.text and reply.reply_to == "m1"
    history = await memory.history("telegram:b:c1", 10)
    assert [(t.role, t.text) for t in history] == [("user", "my cat is Miso"), ("assistant", reply.text)]


async def test_a_dead_llm_gives_an_apology_with_a_reason(memory: SqlMemory, unused_tcp_port: int) -> None:
    from prometheus_client import REGISTRY

    def degraded() -> float:
        return REGISTRY.get_sample_value("patchbay_handler_degraded_total", {"stage": "llm"}) or 0.0

    before = degraded()
    handler = _handler(LiteLLMClient("openai/sim-model", api_base=f"http://127.0.0.1:{unused_tcp_port}/v1"), memory)
    reply = await handler.handle(_envelope("hello?"))
    assert (reply.text, reply.reason) == (APOLOGY, "llm_unavailable")
    assert degraded() == before + 1  # counted, not only logged
    assert await memory.history("telegram:b:c1", 10) == []  # an apology is not a memory


async def test_voice_command_is_remembered_per_user(
    simulator: LLMSimulator, memory: SqlMemory, redis_url: str, redis_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    voice = SilentVoice()
    async with Redis.from_url(redis_url) as redis:
        replies = VoiceReplies(voice, VoicePreferences(redis))  # type: ignore[arg-type]
        handler = _handler(LiteLLMClient("openai/sim-model", api_base=simulator.base_url), memory, replies)
        on = await handler.handle(_envelope("/voice on"))
        assert on.text == "Voice replies are on." and simulator.stats()["chat_requests"] == 0
        spoken = await handler.handle(_envelope("say something", message_id="m2"))
        assert voice.spoken == [spoken.text] and spoken.attachments[0].is_voice
        other = await handler.handle(_envelope("and me?", message_id="m3").model_copy(update={"author_id": "u2"}))
        assert not other.attachments  # u2 never asked for voice
        await handler.handle(_envelope("/voice off", message_id="m4"))
        quiet = await handler.handle(_envelope("quiet now", message_id="m5"))
        assert not quiet.attachments and len(voice.spoken) == 1


async def test_voice_message_without_transcription_says_so(memory: SqlMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATCHBAY_STT_MODEL", raising=False)
    handler = _handler(LiteLLMClient("openai/unused"), memory)
    voice = Attachment(url="http://127.0.0.1:9/voice.ogg", mime_type="audio/ogg", is_voice=True)
    reply = await handler.handle(_envelope("", voice=voice))
    assert (reply.text, reply.reason) == (VOICE_INPUT_NOT_SET_UP, "voice_input_unavailable")


async def test_voice_message_is_transcribed_when_a_provider_is_set(
    simulator: LLMSimulator, memory: SqlMemory, monkeypatch: pytest.MonkeyPatch
) -> None:
    heard: list[int] = []

    async def transcriptions(request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        assert isinstance(upload, web.FileField)
        heard.append(len(upload.file.read()))
        return web.json_response({"text": "what is the weather"})

    token = "4242:unit-test-token"

    async def get_file(request: web.Request) -> web.Response:
        form = await request.post()
        assert form["file_id"] == "voice-file-1"
        return web.json_response({"ok": True, "result": {"file_id": "voice-file-1", "file_path": "voice/f1.oga"}})

    async def voice_file(request: web.Request) -> web.Response:
        return web.Response(body=b"OggS" + bytes(60), content_type="audio/ogg")

    app = web.Application()
    app.router.add_post("/v1/audio/transcriptions", transcriptions)
    app.router.add_post(f"/bot{token}/getFile", get_file)
    app.router.add_get(f"/file/bot{token}/voice/f1.oga", voice_file)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("PATCHBAY_STT_MODEL", "openai/whisper-1")
        monkeypatch.setenv("PATCHBAY_STT_API_BASE", f"http://127.0.0.1:{port}/v1")
        # Telegram: the envelope names the file; the worker asks getFile and downloads with its own token.
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", token)
        monkeypatch.setenv("TELEGRAM_API_BASE_URL", f"http://127.0.0.1:{port}")
        handler = _handler(LiteLLMClient("openai/sim-model", api_base=simulator.base_url), memory)
        voice = Attachment(file_id="voice-file-1", mime_type="audio/ogg", is_voice=True)
        reply = await handler.handle(_envelope("", voice=voice))
    finally:
        await runner.cleanup()
    assert heard == [64]
    assert reply.reason is None and "what is the weather" in reply.text
