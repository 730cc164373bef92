"""Analytics fixtures: the SQL backends (SQLite always, PostgreSQL when CI provides it) and seeded data."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine

from gateway.analytics import AnalyticsSettings, AnalyticsWriter, EventSink
from gateway.analytics.schema import metadata
from gateway.shared.settings import _async_driver

ANALYTICS_KEY = "test-analytics-key"
POSTGRES = os.environ.get("PATCHBAY_TEST_DATABASE_URL")


def _sync_url(url: str) -> str:
    return url.replace("+aiosqlite", "").replace("postgresql+psycopg", "postgresql+psycopg")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'analytics.db'}"
        return
    if not POSTGRES:
        pytest.skip("PATCHBAY_TEST_DATABASE_URL is not set (CI sets it): PostgreSQL backend not tested here")
    url = _async_driver(POSTGRES)
    engine = create_engine(_sync_url(url))
    metadata.drop_all(engine)  # a clean schema per test: only our own tables
    try:
        yield url
    finally:
        metadata.drop_all(engine)
        engine.dispose()


@pytest.fixture
def analytics_settings() -> AnalyticsSettings:
    return AnalyticsSettings(key=ANALYTICS_KEY)


@pytest.fixture
async def sink(
    redis_url: str, redis_client: redis.Redis, analytics_settings: AnalyticsSettings
) -> AsyncIterator[EventSink]:
    event_sink = EventSink(redis_url, analytics_settings)
    yield event_sink
    await event_sink.aclose()


@pytest.fixture
async def writer(
    redis_url: str, database_url: str, data_dir: Path, analytics_settings: AnalyticsSettings
) -> AsyncIterator[AnalyticsWriter]:
    analytics_writer = AnalyticsWriter(redis_url, database_url, data_dir=data_dir, settings=analytics_settings)
    yield analytics_writer
    await analytics_writer.stop()
