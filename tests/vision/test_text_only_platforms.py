"""With a model that reads text only, a photo gets an honest note and its text is still answered."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.sim.files import SimFile, sample_photo
from tests.vision.platform_stack import vision_stack

pytestmark = pytest.mark.e2e


def test_a_text_only_model_tells_the_user_and_answers_the_text(redis_url: str, tmp_path: Path) -> None:
    # openai/gpt-3.5-turbo: litellm reports it cannot see. The simulator would refuse an image (400).
    with vision_stack(redis_url, tmp_path / "data", model="openai/gpt-3.5-turbo") as stack:
        stack.llm.configure(vision=False)
        platforms = stack.platforms
        photo = sample_photo(800, 600)
        platforms.call(platforms.telegram.user_message(7401, "img-401 what's the capital of France?", photo=photo))
        platforms.call(
            platforms.slack.user_message("D7402", "img-402 hi there", channel_type="im", files=[SimFile(photo)])
        )
        platforms.call(platforms.telegram.user_message(7403, "", photo=photo))  # an image and nothing else

        telegram = stack.one_reply("telegram", "7401")
        slack = stack.one_reply("slack", "D7402")
        alone = stack.one_reply("telegram", "7403")
        note = "I can't see images here (my model reads text only), so I answered your text."
        assert telegram.text.startswith(note) and "img-401 what's the capital of France?" in telegram.text
        assert slack.text.startswith(note) and "img-402 hi there" in slack.text
        assert (
            alone.text
            == "I can't see images here (my model reads text only). Tell me in words what it shows and I'll help."
        )
        stats = stack.llm.stats()
        assert stats["images"] == [] and stats["chat_requests"] == 2  # the image-only message cost no model call
        assert "openai/gpt-3.5-turbo reads text only" in stack.cluster.logs("worker0")
