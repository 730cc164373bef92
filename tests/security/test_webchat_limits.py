"""Per-client limits of the web chat, against a running gateway: made-up identities cannot exhaust shared limits.

Observed on the old main: 700 client-chosen ids used up the web chat's platform limit and a real new
user then got 429. Now every browser message is also counted per session and per client address
(the trusted proxy's X-Forwarded-For, or the TCP peer), before it can spend a shared limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.e2e.harness import Cluster, wait_until
from tests.e2e.platform_helpers import queue_drained

pytestmark = pytest.mark.e2e

PLATFORM_LIMIT = 20


@pytest.fixture
def limited(redis_url: str, redis_client: redis.Redis, tmp_path: Path, sim_env: dict[str, str]) -> Iterator[Cluster]:
    env = {
        **sim_env,
        "PATCHBAY_EMBEDDING_MODEL": "hash",
        "PATCHBAY_LIMIT_WEBCHAT_ADDRESS": "5/minute",
        "PATCHBAY_LIMIT_WEBCHAT_SESSION": "3/minute",
        "PATCHBAY_LIMIT_WEBCHAT_RATING": "2/minute",
        "PATCHBAY_LIMIT_PLATFORM": f"{PLATFORM_LIMIT}/minute",
        # Only 127.0.0.2 is the proxy: its X-Forwarded-For is believed, anyone else's is ignored.
        "PATCHBAY_TRUSTED_PROXIES": "127.0.0.2",
    }
    gateway = Cluster(redis_url, tmp_path / "data", env)
    try:
        yield gateway.start(workers=1)
    finally:
        gateway.stop()


def _via(peer: str, cluster: Cluster, forwarded_for: str | None = None) -> httpx.Client:
    """A client connecting from ``peer`` (any 127.x address is this machine), claiming ``forwarded_for``."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    transport = httpx.HTTPTransport(local_address=peer)
    return httpx.Client(base_url=cluster.url, timeout=120, headers=headers, transport=transport)


def test_made_up_identities_cannot_exhaust_the_shared_limits(limited: Cluster, redis_client: redis.Redis) -> None:
    cluster = limited
    statuses = []
    for i in range(PLATFORM_LIMIT + 5):  # more than the whole platform may take in a minute
        with _via("127.0.0.2", cluster, "203.0.113.66") as fresh:  # a brand-new session every time, one address
            statuses.append(fresh.post("/api/chat", json={"text": f"spam {i}"}).status_code)
    assert statuses == [200] * 5 + [429] * PLATFORM_LIMIT, statuses
    with _via("127.0.0.2", cluster, "203.0.113.66") as fresh:
        refused = fresh.post("/api/chat", json={"text": "one more"})
    assert refused.json()["detail"] == "client limit: webchat address 5 per minute"
    assert int(refused.headers["Retry-After"]) >= 1

    # A real new user elsewhere still gets in: the refusals spent nothing of the platform's budget.
    with _via("127.0.0.2", cluster, "198.51.100.7") as newcomer:
        assert newcomer.post("/api/chat", json={"text": "hello, first time here"}).status_code == 200
        # One session alone is limited too, before its address is.
        assert [newcomer.post("/api/chat", json={"text": f"more {i}"}).status_code for i in range(3)] == [200, 200, 429]

    # X-Forwarded-For from a peer that is not the trusted proxy is ignored: that peer's own address counts.
    spoofed = []
    for i in range(7):
        with _via("127.0.0.3", cluster, f"192.0.2.{i}") as liar:
            response = liar.post("/api/chat", json={"text": f"spoof {i}"})
            spoofed.append((response.status_code, response.json().get("detail")))
    assert spoofed[5:] == [(429, "client limit: webchat address 5 per minute")] * 2, spoofed
    assert [status for status, _ in spoofed[:5]] == [200] * 5
    wait_until(lambda: queue_drained(redis_client), what="the queue to drain")


def test_ratings_are_limited_per_client(limited: Cluster) -> None:
    with _via("127.0.0.2", limited, "198.51.100.9") as rater:
        for i in range(3):
            assert rater.post("/api/chat", json={"text": f"question {i}", "message_id": f"q{i}"}).status_code == 200
        statuses = [rater.post("/api/rating", json={"message_id": f"q{i}", "value": -1}).status_code for i in range(3)]
    assert statuses == [200, 200, 429]
