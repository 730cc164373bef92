"""The handler's image step against the real LLM simulator through litellm: sent, noted, refused, remembered as text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from adapters.sim.llm import LLMSimulator
from gateway.shared.envelope import Attachment, Envelope, Platform
from gateway.shared.keys import webchat_upload
from tests.vision.images import picture
from workers.handler import ChatHandler, HandlerConfig
from workers.llm.client import LiteLLMClient
from workers.llm.trimming import IMAGE_TOKENS, count_message_tokens
from workers.memory import SqlMemory, build_base_memory
from workers.report import message_report
from workers.vision.intake import Vision
from workers.vision.parts import text_only
from workers.vision.settings import VisionSettings


@pytest.fixture
async def memory(tmp_path: Path) -> AsyncIterator[SqlMemory]:
    store = build_base_memory(f"sqlite+aiosqlite:///{tmp_path / 'memory.db'}")
    await store.init()
    yield store
    await store.aclose()


@pytest.fixture
async def simulator(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LLMSimulator]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    async with LLMSimulator(port=0) as sim:
        yield sim


def _envelope(text: str, *attachments: Attachment, platform: Platform = Platform.TELEGRAM) -> Envelope:
    return Envelope(
        platform=platform,
        bot_id="b",
        conversation_id="c1",
        message_id="m1",
        author_id="u1",
        is_direct=True,
        text=text,
        attachments=list(attachments),
    )


def _photo(width: int = 2400, height: int = 1600) -> Attachment:
    return Attachment.from_bytes(picture(width, height), "image/jpeg")


def _handler(
    sim: LLMSimulator, memory: SqlMemory, model: str, *, sees: bool, redis: Redis | None = None
) -> ChatHandler:
    vision = Vision(VisionSettings(max_side=512), sees=sees, redis=redis)
    llm = LiteLLMClient(model, api_base=sim.base_url)
    return ChatHandler(llm, memory, HandlerConfig(system_prompt="be brief"), vision=vision)


async def test_a_photo_reaches_a_vision_model_scaled_and_memory_keeps_only_text(
    simulator: LLMSimulator, memory: SqlMemory
) -> None:
    handler = _handler(simulator, memory, "openai/gpt-4o", sees=True)
    with message_report("k") as report:
        reply = await handler.handle(_envelope("what is in this photo?", _photo()))
    assert reply.reason is None
    assert "what is in this photo? [image 512x341]" in reply.text  # the simulator saw it, scaled
    assert simulator.stats()["images"] == [
        {
            "url_kind": "data",
            "mime_type": "image/jpeg",
            "bytes": report.images[0]["sent_bytes"],
            "width": 512,
            "height": 341,
        }
    ]
    [record] = report.images
    assert record["outcome"] == "sent" and (record["width"], record["height"]) == (2400, 1600)
    assert "data" not in str(record).replace("'data'", "")  # metadata, never bytes or a data URL
    assert not any("base64" in str(value) for value in record.values())
    history = await memory.history("telegram:b:c1", 10)
    assert [turn.text for turn in history] == ["what is in this photo?", reply.text]


async def test_an_image_only_message_is_remembered_as_that(simulator: LLMSimulator, memory: SqlMemory) -> None:
    reply = await _handler(simulator, memory, "openai/gpt-4o", sees=True).handle(_envelope("", _photo(300, 200)))
    assert reply.reason is None and "[image 300x200]" in reply.text
    history = await memory.history("telegram:b:c1", 10)
    assert history[0].text == "[sent an image]"


async def test_a_text_only_model_gets_a_note_and_the_text_is_answered(
    simulator: LLMSimulator, memory: SqlMemory
) -> None:
    simulator.configure(vision=False)  # it would refuse an image part with a 400
    handler = _handler(simulator, memory, "openai/gpt-3.5-turbo", sees=False)
    with message_report("k") as report:
        reply = await handler.handle(_envelope("and how are you?", _photo()))
    assert reply.reason is None
    assert reply.text.startswith("I can't see images here (my model reads text only), so I answered your text.")
    assert "and how are you?" in reply.text and "[image" not in reply.text
    assert simulator.stats()["images"] == [] and simulator.stats()["chat_requests"] == 1
    assert report.images == [
        {"mime_type": "image/jpeg", "declared_bytes": _photo().size, "outcome": "model_cannot_see"}
    ]
    history = await memory.history("telegram:b:c1", 10)
    assert "I can't see images" not in history[1].text  # the note is not a remembered answer


async def test_an_image_alone_for_a_text_only_model_is_one_honest_reply_without_a_model_call(
    simulator: LLMSimulator, memory: SqlMemory
) -> None:
    reply = await _handler(simulator, memory, "openai/gpt-3.5-turbo", sees=False).handle(_envelope("", _photo()))
    assert reply.reason == "image_not_seen"
    assert (
        reply.text
        == "I can't see images here (my model reads text only). Tell me in words what it shows and I'll help."
    )
    assert simulator.stats()["chat_requests"] == 0


async def test_an_oversized_image_is_refused_with_a_reason_and_the_text_still_answered(
    simulator: LLMSimulator, memory: SqlMemory
) -> None:
    vision = Vision(VisionSettings(max_bytes=50_000), sees=True)
    handler = ChatHandler(
        LiteLLMClient("openai/gpt-4o", api_base=simulator.base_url), memory, HandlerConfig("be brief"), vision=vision
    )
    big = Attachment(file_id="f", mime_type="image/jpeg", size=5_000_000)  # declared too large: never fetched
    with message_report("k") as report:
        reply = await handler.handle(_envelope("look", big))
    assert reply.reason is None
    assert reply.text.startswith("I couldn't look at your image: it is larger than 48 KB.")
    assert "look" in reply.text and simulator.stats()["images"] == []
    assert report.images[0]["outcome"] == "too_large"


async def test_a_model_that_cannot_see_in_the_chain_gets_the_text_only_form(
    simulator: LLMSimulator, memory: SqlMemory
) -> None:
    # The answering model sees, but this client is a text-only one (a fallback link): it converts itself.
    simulator.configure(vision=False)
    handler = _handler(simulator, memory, "openai/gpt-3.5-turbo", sees=True)
    reply = await handler.handle(_envelope("describe", _photo()))
    assert reply.reason is None and simulator.stats()["images"] == []  # no image part reached it: no 400
    last = simulator.stats()["recent_prompts"][-1][-1]
    assert last["content"] == "describe\n[an image the model cannot see]"


async def test_a_web_chat_upload_is_read_under_its_owner_only(
    simulator: LLMSimulator, memory: SqlMemory, redis_url: str, redis_client: Any
) -> None:
    redis = Redis.from_url(redis_url)
    try:
        handler = _handler(simulator, memory, "openai/gpt-4o", sees=True, redis=redis)
        envelope = _envelope("mine", Attachment(file_id="up1", mime_type="image/png"), platform=Platform.WEBCHAT)
        envelope = envelope.model_copy(update={"bot_id": "webchat"})
        key = webchat_upload(envelope.user_key, "up1")
        redis_client.hset(key, mapping={"data": picture(800, 800, "PNG"), "mime_type": "image/png", "bytes": 1})
        other = envelope.model_copy(update={"author_id": "u2", "message_id": "m2"})
        with message_report("k2") as report:
            stolen = await handler.handle(other)
        assert "[image" not in stolen.text and report.images[0]["outcome"] == "upload_missing"
        assert stolen.text.startswith("I couldn't look at your image")
        assert redis_client.exists(key)  # another user's message did not touch it
        reply = await handler.handle(envelope)
        assert "[image 512x512]" in reply.text
        assert not redis_client.exists(key)  # read once, then deleted
    finally:
        await redis.aclose()


def test_an_image_counts_a_fixed_number_of_tokens_however_large_its_data_url() -> None:
    url = "data:image/jpeg;base64," + "A" * 400_000
    parts = [{"type": "text", "text": "hello there"}, {"type": "image_url", "image_url": {"url": url}}]
    counted = count_message_tokens("openai/gpt-4o", [{"role": "user", "content": parts}])
    assert (
        counted == count_message_tokens("openai/gpt-4o", text_only([{"role": "user", "content": parts}])) + IMAGE_TOKENS
    )
    assert counted < IMAGE_TOKENS + 50


async def test_forgetting_a_user_deletes_their_waiting_uploads_and_nobody_elses(
    redis_url: str, redis_client: Any
) -> None:
    from workers.forget import _forget_webchat_uploads

    mine = [webchat_upload("webchat:a*b", "one"), webchat_upload("webchat:a*b", "two")]
    theirs = [webchat_upload("webchat:aXb", "one"), webchat_upload("webchat:a*bc", "one")]  # a glob would match these
    for key in mine + theirs:
        redis_client.hset(key, mapping={"data": b"x", "mime_type": "image/png", "bytes": 1})
    redis = Redis.from_url(redis_url)
    try:
        await _forget_webchat_uploads(redis, "webchat:a*b")
    finally:
        await redis.aclose()
    assert [bool(redis_client.exists(key)) for key in mine + theirs] == [False, False, True, True]
