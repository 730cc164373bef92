"""Images in the web chat: uploaded to the gateway (size-limited at the edge), kept in Redis under their
owner for minutes, read once by the worker and sent to the model; nobody else can use an upload id."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from adapters.sim.files import sample_photo
from adapters.sim.llm import SimulatorProcess
from tests.e2e.harness import WEBCHAT_API_KEY, Cluster, wait_until
from tests.e2e.platform_helpers import queue_drained

pytestmark = pytest.mark.e2e

MAX_IMAGE_BYTES = 300_000
KEY = {"Authorization": f"Bearer {WEBCHAT_API_KEY}"}


@pytest.fixture(scope="module")
def web(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, SimulatorProcess]]:
    redis.Redis.from_url(redis_url).flushdb()
    llm = SimulatorProcess()
    env = {
        "PATCHBAY_LLM_MODEL": "openai/gpt-4o",
        "PATCHBAY_LLM_API_BASE": llm.base_url,
        "OPENAI_API_KEY": "sk-test",
        "PATCHBAY_EMBEDDING_MODEL": "hash",
        "PATCHBAY_VISION_MAX_SIDE": "512",
        "PATCHBAY_WEBCHAT_MAX_IMAGE_BYTES": str(MAX_IMAGE_BYTES),
    }
    cluster = Cluster(redis_url, Path(tmp_path_factory.mktemp("webchat-vision")) / "data", env)
    try:
        cluster.start(workers=1)
        yield cluster, llm
    finally:
        cluster.stop()
        llm.stop()


def _upload(client: httpx.Client, data: bytes, content_type: str = "image/jpeg", **params: str) -> httpx.Response:
    return client.post("/api/upload", content=data, headers={"Content-Type": content_type}, params=params)


def _upload_keys(redis_client: Any) -> list[bytes]:
    return list(redis_client.scan_iter(match="patchbay:webchat:upload:*"))


def test_a_browser_uploads_an_image_and_the_model_sees_it_scaled(
    web: tuple[Cluster, SimulatorProcess], redis_url: str
) -> None:
    cluster, llm = web
    client = redis.Redis.from_url(redis_url)
    with cluster.browser() as browser:
        uploaded = _upload(browser, sample_photo(1600, 1200))
        assert uploaded.status_code == 200, uploaded.text
        body = uploaded.json()
        assert body["mime_type"] == "image/jpeg" and body["expires_in_s"] == 300
        assert len(_upload_keys(client)) == 1
        answer = browser.post("/api/chat", json={"text": "what is this?", "images": [body["upload_id"]]})
        assert answer.status_code == 200, answer.text
        assert "what is this? [image 512x384]" in answer.json()["text"]
        assert llm.stats()["images"][-1]["width"] == 512
        wait_until(lambda: queue_drained(client), what="the queue to drain")
        assert _upload_keys(client) == []  # read once by the worker, then deleted

        # An image alone is a message too.
        again = _upload(browser, sample_photo(300, 600, "PNG"), "image/png").json()["upload_id"]
        alone = browser.post("/api/chat", json={"text": "", "images": [again]})
        assert alone.status_code == 200 and alone.json()["text"].endswith("[image 256x512]")
    client.close()


def test_an_upload_id_is_useless_to_anyone_else(web: tuple[Cluster, SimulatorProcess]) -> None:
    cluster, llm = web
    seen = len(llm.stats()["images"])
    with cluster.browser() as owner, cluster.browser() as other:
        upload_id = _upload(owner, sample_photo(200, 200)).json()["upload_id"]
        stolen = other.post("/api/chat", json={"text": "show me", "images": [upload_id]})
        assert stolen.status_code == 422 and stolen.json()["error"] == "unknown_image"
        # A site's key acts for the user it names: alice's upload is not bob's either.
        site = httpx.Client(base_url=cluster.url, headers=KEY, timeout=120)
        alices = _upload(site, sample_photo(200, 200), user_id="alice").json()["upload_id"]
        assert cluster.chat("bob", "mine now?", images=[alices]).status_code == 422
        assert cluster.chat("alice", "mine", images=[upload_id]).status_code == 422  # the browser's, not alice's
        mine = cluster.chat("alice", "mine", images=[alices])
        assert mine.status_code == 200 and "[image 200x200]" in mine.json()["text"]
        site.close()
    assert len(llm.stats()["images"]) == seen + 1


def test_the_edge_refuses_oversized_and_non_image_uploads(
    web: tuple[Cluster, SimulatorProcess], redis_url: str
) -> None:
    cluster, _ = web
    client = redis.Redis.from_url(redis_url)
    before = _upload_keys(client)
    with cluster.browser() as browser:
        too_big = _upload(browser, os.urandom(MAX_IMAGE_BYTES + 1))
        assert too_big.status_code == 413 and too_big.json()["error"] == "body_too_large"

        def chunks() -> Iterator[bytes]:
            yield b"\xff\xd8\xff" + b"\0" * 100_000
            for _ in range(5):
                yield os.urandom(100_000)

        chunked = browser.post("/api/upload", content=chunks(), headers={"Content-Type": "image/jpeg"})
        assert chunked.status_code == 413
        assert _upload(browser, b"hello", "text/plain").status_code == 415
        disguised = _upload(browser, b"<html><script>alert(1)</script></html>", "image/png")
        assert disguised.status_code == 415 and disguised.json()["error"] == "not_an_image"
        assert browser.post("/api/chat", json={"text": "x" * 10, "images": ["no such id!"]}).status_code == 422
    assert _upload_keys(client) == before  # nothing refused was stored
    client.close()


def test_the_terminal_chat_sends_a_picture(web: tuple[Cluster, SimulatorProcess], tmp_path: Path) -> None:
    import subprocess
    import sys

    cluster, _ = web
    picture = tmp_path / "cat.png"
    picture.write_bytes(sample_photo(640, 480, "PNG"))
    command = [sys.executable, "-m", "gateway.cli", "chat", "--url", cluster.url, "--user", "carol"]
    typed = f"/image {picture} what is it?\n/image {tmp_path / 'notes.txt'}\n"
    done = subprocess.run(
        command,
        input=typed,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATCHBAY_WEBCHAT_API_KEY": WEBCHAT_API_KEY},
    )
    assert done.returncode == 0, done.stderr
    assert "bot> sim reply #" in done.stdout and "what is it? [image 512x384]" in done.stdout
    assert "does not look like an image" in done.stderr
