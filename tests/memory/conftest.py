"""Memory fixtures: the same tests run on SQLite and, when ``PATCHBAY_TEST_DATABASE_URL`` is set, PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.shared.settings import Settings
from workers.memory import SqlMemory
from workers.memory.embedder import MiniLMEmbedder


def _postgres_url() -> str | None:
    configured = os.environ.get("PATCHBAY_TEST_DATABASE_URL")
    return Settings(database_url=configured).sqlalchemy_url if configured else None


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'memory.db'}"
    url = _postgres_url()
    if url is None:
        pytest.skip("PATCHBAY_TEST_DATABASE_URL is not set")
    return url


@pytest.fixture
async def memory(database_url: str) -> AsyncIterator[SqlMemory]:
    # A table prefix of its own: CI reuses the PostgreSQL database across runs and tests.
    store = SqlMemory(database_url, embedder=MiniLMEmbedder(), table_prefix=f"mt_{uuid.uuid4().hex[:12]}")
    await store.init()
    try:
        yield store
    finally:
        await store.flush()
        await store.drop()
        await store.aclose()
