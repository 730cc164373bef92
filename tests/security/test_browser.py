"""The web chat in a real headless Chromium, for a new user with no setup: the cookie comes with the first visit."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import Cluster

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"),
]


def test_a_new_visitor_chats_with_no_setup(make_cluster, sim_env, llm_sim) -> None:
    from playwright.sync_api import sync_playwright

    cluster: Cluster = make_cluster(sim_env).start(workers=1)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()  # a browser that has never been here: no cookie, no storage
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.goto(cluster.url + "/")
            (cookie,) = [c for c in context.cookies() if c["name"] == "patchbay_session"]
            assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
            assert page.evaluate("document.cookie") == ""  # the page's script cannot read the identity
            page.wait_for_function("document.getElementById('who').textContent.startsWith('session-')")
            who = page.text_content("#who")
            page.fill("#text", "hello from a brand new browser")
            page.press("#text", "Enter")
            page.wait_for_selector(".msg.bot:has-text('hello from a brand new browser')", timeout=60_000)
            page.click(".msg.bot .meta button[title='Good answer']")
            page.wait_for_selector(".msg.bot .meta button.on")
            page.reload()  # the same browser is the same user
            page.wait_for_function("document.getElementById('who').textContent.startsWith('session-')")
            assert page.text_content("#who") == who
            # A second, separate browser is somebody else.
            other = browser.new_context().new_page()
            other.goto(cluster.url + "/")
            other.wait_for_function("document.getElementById('who').textContent.startsWith('session-')")
            assert other.text_content("#who") != who
        finally:
            browser.close()
    assert errors == []  # the strict CSP blocked nothing the page needs
    prompt = llm_sim.stats()["recent_prompts"][-1]
    assert prompt[-1] == {"role": "user", "content": "hello from a brand new browser"}
