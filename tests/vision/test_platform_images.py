"""A photo on every platform, through the real adapters and a real worker, reaches a vision model scaled.

The simulators serve each file from their own file host as the platform does (Telegram ``getFile``
and ``/file/bot<token>/…``, Discord's attachment URLs, Slack's ``url_private`` with the bot token);
the LLM simulator decodes every image part it receives, so the size the model got is measured, not
assumed. ``openai/gpt-4o`` is a model litellm reports as seeing images; it is served by the simulator.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from PIL import Image

from adapters.sim.files import SimFile, sample_photo
from tests.e2e.harness import wait_until
from tests.vision.platform_stack import MAX_SIDE, VisionStack, vision_stack

pytestmark = pytest.mark.e2e

MAX_BYTES = 400_000


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VisionStack]:
    data_dir = Path(tmp_path_factory.mktemp("vision")) / "data"
    env = {"PATCHBAY_VISION_MAX_BYTES": str(MAX_BYTES)}
    with vision_stack(redis_url, data_dir, model="openai/gpt-4o", env=env) as running:
        yield running


def _scaled(width: int, height: int) -> str:
    factor = MAX_SIDE / max(width, height)
    return f"[image {round(width * factor)}x{round(height * factor)}]"


def test_a_photo_on_each_platform_reaches_the_model_as_image_content_within_the_limit(stack: VisionStack) -> None:
    platforms = stack.platforms
    photo = sample_photo(1600, 1200)
    png = sample_photo(1000, 800, "PNG")
    platforms.call(platforms.telegram.user_message(7101, "img-101 what is this?", user_id=7101, photo=photo))
    document = SimFile(png, "diagram.png", "image/png")
    platforms.call(platforms.telegram.user_message(7102, "img-102 and this file?", user_id=7102, document=document))
    sent = platforms.call(
        platforms.discord.user_message(0, "img-103 look", author_id=7103, dm=True, files=[SimFile(photo)])
    )
    platforms.call(platforms.slack.user_message("D7104", "img-104 see", channel_type="im", files=[SimFile(photo)]))
    # In a group, a photo is answered when its caption mentions the bot, as a text would be.
    group = {"chat_type": "group", "user_id": 7105, "mention": True}
    platforms.call(platforms.telegram.user_message(-7105, "img-105 in the group", photo=photo, **group))

    telegram_photo = stack.one_reply("telegram", "7101")
    telegram_document = stack.one_reply("telegram", "7102")
    discord = stack.one_reply("discord", str(sent["channel_id"]))
    slack = stack.one_reply("slack", "D7104")
    telegram_group = stack.one_reply("telegram", "-7105")

    # Telegram sends a 90-pixel thumbnail and the photo: the largest one was used.
    assert "img-101 what is this? " + _scaled(1600, 1200) in telegram_photo.text
    assert "img-102 and this file? " + _scaled(1000, 800) in telegram_document.text
    assert "img-103 look " + _scaled(1600, 1200) in discord.text
    assert "img-104 see " + _scaled(1600, 1200) in slack.text
    assert "img-105 in the group " + _scaled(1600, 1200) in telegram_group.text
    seen = stack.images_seen()
    assert len(seen) == 5
    for image in seen:
        assert image["url_kind"] == "data" and image["bytes"] > 0
        assert max(image["width"], image["height"]) == MAX_SIDE
    # Analytics keep what the images were, never what they showed.
    events = wait_until(lambda: [e for e in stack.reply_events() if e.get("images")], what="the reply events")
    recorded = [image for event in events for image in event["images"]]
    assert {image["outcome"] for image in recorded} == {"sent"}
    assert all(
        set(image)
        <= {
            "mime_type",
            "declared_bytes",
            "outcome",
            "bytes",
            "width",
            "height",
            "sent_width",
            "sent_height",
            "sent_bytes",
            "sent_mime_type",
        }
        for image in recorded
    )


@pytest.fixture
def listener(stack: VisionStack) -> Iterator[tuple[str, list[str]]]:
    """A web server on 127.0.0.1 that is no platform's: it records every request it gets."""
    requests: list[str] = []

    async def record(request: web.Request) -> web.Response:
        requests.append(f"{request.method} {request.path_qs} auth={request.headers.get('Authorization')}")
        return web.Response(body=sample_photo(64, 64), content_type="image/jpeg")

    async def start() -> web.AppRunner:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", record)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = stack.platforms.call(start())
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", requests
    finally:
        stack.platforms.call(runner.cleanup())


def test_a_file_on_a_foreign_host_is_never_fetched_and_the_text_is_still_answered(
    stack: VisionStack, listener: tuple[str, list[str]]
) -> None:
    platforms = stack.platforms
    origin, requests = listener
    before = len(stack.images_seen())
    foreign = SimFile(b"", "cat.jpg", "image/jpeg", url=f"{origin}/attachments/1/cat.jpg")
    sent = platforms.call(platforms.discord.user_message(0, "img-201 here", author_id=7201, dm=True, files=[foreign]))
    slack_foreign = SimFile(b"", "cat.jpg", "image/jpeg", url=f"{origin}/files-pri/T1-F1/cat.jpg")
    platforms.call(platforms.slack.user_message("D7202", "img-202 here", channel_type="im", files=[slack_foreign]))

    for platform, chat in (("discord", str(sent["channel_id"])), ("slack", "D7202")):
        reply = stack.one_reply(platform, chat)
        assert reply.text.startswith("I couldn't look at your image: I could not fetch it.")
        assert "here" in reply.text  # the text part was answered
    assert requests == []  # not fetched, and no Slack token went to it
    assert len(stack.images_seen()) == before


def test_an_oversized_image_is_refused_with_a_recorded_reason_and_one_reply(stack: VisionStack) -> None:
    platforms = stack.platforms
    noise = io.BytesIO()
    Image.frombytes("RGB", (600, 600), os.urandom(600 * 600 * 3)).save(noise, format="PNG")
    assert len(noise.getvalue()) > MAX_BYTES
    big = SimFile(noise.getvalue(), "noise.png", "image/png")
    platforms.call(platforms.telegram.user_message(7301, "img-301 too big?", user_id=7301, document=big))
    sent = platforms.call(platforms.discord.user_message(0, "img-302 too big?", author_id=7302, dm=True, files=[big]))
    before = len(stack.images_seen())
    for platform, chat in (("telegram", "7301"), ("discord", str(sent["channel_id"]))):
        reply = stack.one_reply(platform, chat)
        assert reply.text.startswith("I couldn't look at your image: it is larger than 390 KB.")
        assert "too big?" in reply.text
    assert len(stack.images_seen()) == before

    def refused() -> list[dict[str, object]]:
        return [i for e in stack.reply_events() for i in e.get("images", []) if i["outcome"] == "too_large"]

    assert len(wait_until(lambda: len(refused()) >= 2 and refused(), what="the refusals in analytics")) == 2
