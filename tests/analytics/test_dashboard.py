"""The dashboard in a real headless Chromium, over real events written through EventSink + AnalyticsWriter."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gateway.analytics import AnalyticsWriter, EventSink
from gateway.shared.settings import Settings

from .app_helpers import serve
from .dataset import seed

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "dashboard-test-token"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"),
]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_dashboard_renders_real_data(
    redis_url: str, database_url: str, data_dir: Path, sink: EventSink, writer: AnalyticsWriter, redis_client
) -> None:  # type: ignore[no-untyped-def]
    from playwright.async_api import async_playwright

    from patches.control import REGISTERED_KEY

    await seed(sink, base=time.time() - 3 * 3600)
    published = {
        "name": "memory_enhancement",
        "kind": "memory",
        "description": "entity-weighted recall",
        "config_enabled": True,
        "config_rollout_percent": 50.0,
        "refused": False,
        "refusal_reason": "",
    }
    redis_client.hset(REGISTERED_KEY, "memory_enhancement", json.dumps(published))  # as a worker publishes it
    broken = {"name": "half_installed", "kind": "?", "refused": True, "broken": True,
              "refusal_reason": "broken: cannot load half_installed:SPEC: ImportError: no module"}  # fmt: skip
    redis_client.hset(REGISTERED_KEY, "half_installed", json.dumps(broken))
    await writer.flush()
    settings = Settings(redis_url=redis_url, database_url=database_url, data_dir=data_dir, admin_token=TOKEN)
    async with serve(settings) as base, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1400, "height": 1500})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))

        # Without a token the page asks for one; a wrong one is refused.
        await page.goto(f"{base}/dashboard")
        await page.fill("#token", "wrong")
        await page.click("#login-form button")
        await page.wait_for_selector("#login-error:has-text('refused')")

        # ?token= once: kept in sessionStorage, removed from the address bar.
        await page.goto(f"{base}/dashboard?token={TOKEN}")
        await page.wait_for_selector("body[data-loaded='true']", timeout=20_000)
        assert "token" not in page.url

        platforms = await page.eval_on_selector_all(
            "#chart-platforms [data-label]", "nodes => nodes.map(n => [n.dataset.label, n.textContent])"
        )
        assert dict(platforms) == {"discord": "4", "slack": "1", "telegram": "1"}  # 7 days: m0 included
        assert await page.inner_text("[data-card='messages'] .value") == "6"
        assert await page.inner_text("[data-card='satisfaction'] .value") == "75 %"
        assert await page.inner_text("[data-card='p50 response'] .value") == "2,500 ms"
        traffic = await page.eval_on_selector_all(
            "#chart-traffic path[data-series]", "ns => ns.map(n => n.dataset.series)"
        )
        assert sorted(traffic) == ["discord", "slack", "telegram"]
        providers = await page.eval_on_selector_all(
            "#chart-providers [data-label]", "nodes => nodes.map(n => [n.dataset.label, n.textContent])"
        )
        assert dict(providers) == {"local": "1", "openai": "3"}
        assert "memory_enhancement" in await page.inner_text("#table-rollouts")
        patch_row = await page.inner_text("#table-patches table")
        assert "memory_enhancement" in patch_row and "50 %" in patch_row
        assert "half_installed" in patch_row and "cannot load half_installed:SPEC" in patch_row  # broken, with why

        # A download button fetches the export with the token.
        async with page.expect_download() as download_info:
            await page.click("#downloads button[data-format='jsonl']")
        download = await download_info.value
        saved = data_dir / "download.jsonl"
        await download.save_as(saved)
        assert len(saved.read_text().splitlines()) == 14

        artifacts = ROOT / "test-artifacts"
        artifacts.mkdir(exist_ok=True)
        await page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
        await browser.close()

    assert errors == []
    assert all(url.startswith(base) or url.startswith("blob:") for url in requests), json.dumps(requests)
