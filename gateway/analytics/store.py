"""The analytics database: an async SQLAlchemy engine with the tables created."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.analytics.schema import metadata

__all__ = ["open_engine"]

log = logging.getLogger(__name__)


async def open_engine(url: str) -> AsyncEngine:
    """Engine for ``url`` (``Settings().sqlalchemy_url``), creating the tables when missing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)
    try:
        await _create_tables(engine)
    except DBAPIError as exc:
        # Two processes creating the tables at once on PostgreSQL: one loses the race on the catalog.
        # The second attempt finds the tables (create_all checks first); a real problem raises again.
        log.warning("creating the analytics tables failed (%s); retrying once", exc.__class__.__name__)
        await _create_tables(engine)
    return engine


async def _create_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
