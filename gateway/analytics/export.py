"""Stream the events table to CSV, JSON Lines or Parquet in batches (never the whole table in memory).

Every id in the table is already a pseudonym, so exports carry no raw platform id. In CSV and
Parquet the JSON columns (``patches``, ``variants``, ``reply_ids``, ``extra``) are JSON text; in
JSON Lines they are nested objects.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.analytics.schema import EXPORT_COLUMNS, JSON_COLUMNS, events

__all__ = ["FORMATS", "MEDIA_TYPES", "ExportFormat", "count_events", "export"]

ExportFormat = Literal["csv", "jsonl", "parquet"]
FORMATS: tuple[ExportFormat, ...] = ("csv", "jsonl", "parquet")
MEDIA_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}


class _Writer(Protocol):
    def write(self, rows: list[tuple[Any, ...]]) -> None: ...

    def close(self) -> None: ...


def _range(statement: Any, since: float | None, until: float | None) -> Any:
    if since is not None:
        statement = statement.where(events.c.ts >= since)
    if until is not None:
        statement = statement.where(events.c.ts < until)
    return statement


async def count_events(engine: AsyncEngine, since: float | None = None, until: float | None = None) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(_range(select(func.count()).select_from(events), since, until))).scalar_one())


class _JsonLinesWriter:
    def __init__(self, out: Path) -> None:
        self._handle = out.open("w", encoding="utf-8")

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        lines = []
        for row in rows:
            record = dict(zip(EXPORT_COLUMNS, row, strict=True))
            for name in JSON_COLUMNS:
                if record[name] is not None:
                    record[name] = json.loads(record[name])
            lines.append(json.dumps(record, separators=(",", ":")))
        self._handle.write("\n".join(lines) + "\n")

    def close(self) -> None:
        self._handle.close()


@contextmanager
def _open(out: Path, fmt: ExportFormat) -> Iterator[_Writer]:
    writer: _Writer
    if fmt == "jsonl":
        writer = _JsonLinesWriter(out)
    else:
        # pyarrow (about 60 MB resident) is loaded by the first CSV or Parquet export, not by every
        # process that imports analytics (docs/decisions.md, "Memory per process").
        from gateway.analytics.arrow import ArrowWriter

        writer = ArrowWriter(out, fmt)
    try:
        yield writer
    finally:
        writer.close()


async def export(
    engine: AsyncEngine,
    fmt: ExportFormat,
    since: float | None,
    until: float | None,
    out_path: Path,
    progress: Callable[[int], object] | None = None,
    batch_size: int = 50_000,
) -> int:
    """Write the events with ``since <= ts < until`` (epoch s; None = open) to ``out_path``; returns rows.

    Keyset pagination on the primary key keeps every batch a cheap indexed query on SQLite and
    PostgreSQL alike. ``progress(n)`` is called after each batch with its row count (fits tqdm.update).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    columns = [events.c[name] for name in EXPORT_COLUMNS]
    total, last_id = 0, 0
    with _open(out_path, fmt) as writer:
        async with engine.connect() as conn:
            while True:
                page = _range(select(events.c.id, *columns), since, until).where(events.c.id > last_id)
                result = await conn.execute(page.order_by(events.c.id).limit(batch_size))
                rows = [tuple(row) for row in result]
                if not rows:
                    break
                last_id = rows[-1][0]
                writer.write([row[1:] for row in rows])
                total += len(rows)
                if progress is not None:
                    progress(len(rows))
        if total == 0 and fmt != "jsonl":
            writer.write([])  # an empty export still has its header / schema
    return total
