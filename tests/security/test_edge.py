"""The gateway's edge against a running gateway: what an abusive request costs, measured where it was seen.

Observed on the old main: one 300 MB body took the gateway from 222 MB to 1 GB and blocked its event
loop; three at once reached 1.9 GB; slow clients were never timed out; the pages sent no CSP or
frame headers; and a full Redis had no cap and no answer.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from gateway.embedded_redis import EmbeddedRedis
from tests.e2e.harness import WEBCHAT_API_KEY, Cluster, wait_until
from tests.e2e.platform_helpers import queue_drained

pytestmark = pytest.mark.e2e

MB = 1024 * 1024


@pytest.fixture
def env(sim_env: dict[str, str]) -> dict[str, str]:
    # Short timeouts, so that slow clients are seen being cut off within the test.
    return {**sim_env, "PATCHBAY_EMBEDDING_MODEL": "hash", "PATCHBAY_HTTP_HEADER_TIMEOUT": "1",
            "PATCHBAY_HTTP_BODY_TIMEOUT": "2"}  # fmt: skip


@pytest.fixture
def cluster(make_cluster, env: dict[str, str]) -> Cluster:
    return make_cluster(env).start(workers=1)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _connect(cluster: Cluster) -> socket.socket:
    return socket.create_connection(("127.0.0.1", cluster.port), timeout=30)


def _answer(sock: socket.socket) -> bytes:
    """What the server said before it closed the connection (or the first 64 KiB of it)."""
    data = b""
    try:
        while len(data) < 65536:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


def _send_huge(cluster: Cluster, *, declared: bool, results: list[bytes], size: int = 300 * MB) -> None:
    """Try to POST ``size`` bytes (declared with Content-Length, or chunked); keep what the server answered.

    A reader runs beside the writer, so the answer is kept even when the server closes the connection
    while the body is still coming (the writer then stops, as a real client would).
    """
    sock = _connect(cluster)
    answer: list[bytes] = []
    reader = threading.Thread(target=lambda: answer.append(_answer(sock)), daemon=True)
    reader.start()
    head = b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {size}\r\n".encode() if declared else b"Transfer-Encoding: chunked\r\n"
    chunk = b'{"text": "' + b"a" * (MB - 10)
    sent = 0
    try:
        sock.sendall(head + b"\r\n")
        while sent < size and reader.is_alive():
            sock.sendall(chunk if declared else f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the gateway answered and closed while we were still sending: what we want
    reader.join(timeout=30)
    results.append(answer[0] if answer else b"")
    sock.close()


def test_an_oversized_body_is_refused_before_it_is_read_and_memory_stays_flat(cluster: Cluster) -> None:
    assert cluster.gateway is not None
    pid = cluster.gateway.pid
    assert httpx.post(cluster.url + "/api/chat", json={"text": "warm up"}).status_code == 200
    before = _rss_mb(pid)
    results: list[bytes] = []
    started = time.monotonic()
    threads = [
        threading.Thread(target=_send_huge, args=(cluster,), kwargs={"declared": declared, "results": results})
        for declared in (True, True, False)  # three at once, as observed; one without a Content-Length
    ]
    for thread in threads:
        thread.start()
    peak = before
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, _rss_mb(pid))
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    after = _rss_mb(pid)
    assert len(results) == 3 and all(answer.startswith(b"HTTP/1.1 413") for answer in results), results
    assert b"limited to 1,048,576 bytes" in results[0]
    assert peak - before < 40 and after - before < 40, (before, peak, after)  # flat: not 1 GB, not 1.9 GB
    assert elapsed < 30
    # The event loop was never blocked: the gateway answers at once, during and after.
    assert httpx.get(cluster.url + "/healthz", timeout=5).status_code == 200
    print(f"\ngateway RSS: before {before:.0f} MB, peak {peak:.0f} MB, after {after:.0f} MB; 3 x 300 MB refused")


def test_deep_json_is_refused_before_it_is_parsed(cluster: Cluster) -> None:
    deep = b'{"text": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    response = httpx.post(cluster.url + "/api/chat", content=deep, headers={"content-type": "application/json"})
    assert response.status_code == 400 and "nested deeper than 64" in response.json()["detail"]
    assert httpx.get(cluster.url + "/healthz", timeout=5).status_code == 200


def test_slow_clients_are_timed_out(cluster: Cluster) -> None:
    # Headers a byte at a time (slowloris): 408 and closed after PATCHBAY_HTTP_HEADER_TIMEOUT (1 s here).
    slow = _connect(cluster)
    slow.sendall(b"POST /api/chat HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    answer = _answer(slow)
    assert answer.startswith(b"HTTP/1.1 408") and time.monotonic() - started < 5
    # Headers sent, the body never completes: closed after PATCHBAY_HTTP_BODY_TIMEOUT (2 s here).
    dribble = _connect(cluster)
    dribble.sendall(
        b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    started = time.monotonic()
    answer = _answer(dribble)
    assert time.monotonic() - started < 6 and (answer == b"" or answer.startswith(b"HTTP/1.1 408"))
    # An idle connection that never says anything is closed too.
    idle = _connect(cluster)
    assert _answer(idle).startswith(b"HTTP/1.1 408")
    # A normal client is unaffected.
    assert httpx.post(cluster.url + "/api/chat", json={"text": "still fine"}).status_code == 200


def test_pages_send_security_headers(cluster: Cluster) -> None:
    for path in ("/", "/dashboard"):
        page = httpx.get(cluster.url + path)
        assert page.status_code == 200
        policy = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["x-frame-options"] == "DENY"
    script = httpx.get(cluster.url + "/webchat/static/webchat.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert httpx.get(cluster.url + "/healthz").headers["x-content-type-options"] == "nosniff"


def test_metrics_can_be_restricted(make_cluster, env: dict[str, str]) -> None:
    cluster = make_cluster({**env, "PATCHBAY_METRICS_TOKEN": "metrics-secret-token"}).start(workers=1)
    assert httpx.get(cluster.url + "/metrics").status_code == 401
    scraped = httpx.get(cluster.url + "/metrics", headers={"Authorization": "Bearer metrics-secret-token"})
    assert scraped.status_code == 200 and "patchbay_" in scraped.text


# --------------------------------------------------------------------------- a full Redis


@pytest.fixture
def small_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis", persist=False, maxmemory="8mb").start()
    try:
        yield server
    finally:
        server.stop()


def _squeeze(client: redis.Redis, share: float) -> list[str]:
    """Store 2 MiB, then set the cap so that what is used is ``share`` of it."""
    keys = [f"filler:{i}" for i in range(4)]
    for key in keys:
        client.set(key, b"x" * (MB // 2))
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", int(used / share))
    return keys


def _message(cluster: Cluster, browser: httpx.Client, text: str) -> httpx.Response:
    return browser.post("/api/chat", json={"text": text})


def _keyed(cluster: Cluster, text: str) -> httpx.Response:
    return httpx.post(
        cluster.url + "/api/chat",
        json={"user_id": "site-user", "text": text},
        headers={"Authorization": f"Bearer {WEBCHAT_API_KEY}"},
        timeout=60,
    )


def test_a_full_redis_answers_busy_and_never_drops_what_it_holds(
    small_redis: EmbeddedRedis, tmp_path: Path, env: dict[str, str]
) -> None:
    client = redis.Redis(unix_socket_path=str(small_redis.socket))
    assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    assert int(client.config_get("maxmemory")["maxmemory"]) == 8 * MB
    cluster = Cluster(small_redis.url, tmp_path / "data", env).start(workers=1)
    try:
        with cluster.browser() as browser:
            assert _message(cluster, browser, "before it fills").status_code == 200
            wait_until(lambda: queue_drained(client), what="the first message to be acked")
            # Near the cap (95 % > the 90 % high-water mark): new work is refused while Redis still has
            # room for the workers to finish theirs.
            filled = _squeeze(client, 0.95)
            wait_until(lambda: _message(cluster, browser, "near the cap").status_code == 503, timeout_s=10,
                       what="admission to close")  # fmt: skip
            busy = _message(cluster, browser, "while it is nearly full")
            assert busy.status_code == 503 and busy.json()["error"] == "busy"
            assert "send it again" in busy.json()["notice"] and int(busy.headers["Retry-After"]) > 0
            assert _keyed(cluster, "while it is nearly full").json()["error"] == "busy"
            # Over the cap: Redis itself refuses writes; the answer is the same, and nothing was evicted.
            client.config_set("maxmemory", int(client.info("memory")["used_memory"]) - MB // 4)
            with pytest.raises(redis.exceptions.OutOfMemoryError):
                client.set("probe", b"1")
            assert _message(cluster, browser, "while it is full").status_code == 503
            assert _keyed(cluster, "while it is full").status_code == 503
            assert all(client.exists(key) for key in filled)  # noeviction: nothing dropped to make room
            client.delete(*filled)
            client.config_set("maxmemory", 8 * MB)
            wait_until(lambda: _message(cluster, browser, "after").status_code == 200, timeout_s=30,
                       what="messages to be taken again")  # fmt: skip
        assert all(worker.poll() is None for worker in cluster.workers)  # the workers lived through it
    finally:
        cluster.stop()
        client.close()
