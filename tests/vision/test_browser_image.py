"""The web chat page's 📎 button in a real headless Chromium: the picture goes up, the model sees it."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from adapters.sim.files import sample_photo
from adapters.sim.llm import SimulatorProcess
from tests.e2e.harness import Cluster

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"),
]


def test_a_visitor_attaches_a_photo_and_the_model_sees_it(redis_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    redis.Redis.from_url(redis_url).flushdb()
    photo = tmp_path / "holiday.jpg"
    photo.write_bytes(sample_photo(2000, 1500))
    llm = SimulatorProcess()
    env = {
        "PATCHBAY_LLM_MODEL": "openai/gpt-4o",
        "PATCHBAY_LLM_API_BASE": llm.base_url,
        "OPENAI_API_KEY": "sk-test",
        "PATCHBAY_EMBEDDING_MODEL": "hash",
    }
    cluster = Cluster(redis_url, tmp_path / "data", env)
    errors: list[str] = []
    try:
        cluster.start(workers=1)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_context().new_page()
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
                page.goto(cluster.url + "/")
                page.set_input_files("#image", str(photo))
                page.wait_for_selector("#chosen:has-text('holiday.jpg')")
                page.fill("#text", "where was this taken?")
                page.press("#text", "Enter")
                page.wait_for_selector(".msg.me img")  # the user's own bubble shows the picture (blob: URL)
                reply = page.wait_for_selector(".msg.bot:has-text('[image 1024x768]')", timeout=60_000)
                assert reply is not None and "where was this taken?" in (reply.text_content() or "")
            finally:
                browser.close()
    finally:
        cluster.stop()
        llm.stop()
    assert errors == []  # the strict CSP allowed everything the page needed
