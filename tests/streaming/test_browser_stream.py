"""The web chat page in headless Chromium: "typing", then the answer growing, then the final reply.

``PATCHBAY_SCREENSHOTS=<dir>`` also saves the three moments as PNGs (the README's sequence).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from adapters.sim.llm import long_reply
from tests.e2e.harness import Cluster
from tests.security.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.streaming.conftest import REPLY_CHARS

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"),
]

# Every change of the bot's bubble, as the page shows it: its classes and its text length.
_WATCH = """() => {
  window.__seen = [];
  new MutationObserver(() => {
    const bots = document.querySelectorAll('.msg.bot');
    const el = bots[bots.length - 1];
    if (el) window.__seen.push({cls: el.className, len: el.firstChild ? el.firstChild.textContent.length : 0});
  }).observe(document.getElementById('log'), {childList: true, subtree: true, characterData: true});
}"""


def test_the_page_shows_the_answer_growing_then_final(make_cluster: Any, slow_env: dict[str, str]) -> None:
    from playwright.sync_api import sync_playwright

    shots = os.environ.get("PATCHBAY_SCREENSHOTS")
    cluster: Cluster = make_cluster(slow_env).start(workers=1)
    expected = long_reply(REPLY_CHARS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 720, "height": 520})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.goto(cluster.url + "/")
            page.wait_for_function("document.getElementById('who').textContent.startsWith('session-')")
            page.evaluate(_WATCH)
            page.fill("#text", "tell me something long")
            page.press("#text", "Enter")
            page.wait_for_selector(".msg.bot.typing", timeout=60_000)
            if shots:
                page.screenshot(path=str(Path(shots) / "webchat-streaming-1-typing.png"))
            # Polled from here: the page's CSP forbids the string evaluation wait_for_function polls with.
            deadline = time.monotonic() + 60
            while not page.evaluate("() => window.__seen.some(i => i.cls.includes('streaming') && i.len > 80)"):
                assert time.monotonic() < deadline, "the answer never grew past 80 characters on the page"
                page.wait_for_timeout(20)
            if shots:
                page.screenshot(path=str(Path(shots) / "webchat-streaming-2-growing.png"))
            page.wait_for_selector(".msg.bot .meta button[title='Good answer']", timeout=60_000)
            if shots:
                page.screenshot(path=str(Path(shots) / "webchat-streaming-3-final.png"))
            final = page.evaluate("document.querySelector('.msg.bot').firstChild.textContent")
            seen = page.evaluate("window.__seen")
        finally:
            browser.close()
    assert errors == []  # the strict CSP let the streaming request through
    assert final == expected
    growing = sorted({item["len"] for item in seen if "streaming" in item["cls"]})
    assert len(growing) >= 3, f"the text should grow in steps on the page, saw lengths {growing}"
    assert any("typing" in item["cls"] for item in seen)
    assert "streaming" not in seen[-1]["cls"] and "typing" not in seen[-1]["cls"]
