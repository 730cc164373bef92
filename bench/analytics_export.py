"""Export 1,000,000 analytics events to Parquet, against a plain SELECT of the same rows in the same run.

    python bench/analytics_export.py [--events 1000000] [--database-url URL]

The table is filled first (not timed) with rows shaped like real traffic: messages, replies with
patches and variants, reactions. Then, timed: the baseline reads every row with the same paged
query the exporter uses and does nothing with it; the export reads the same rows and writes
Parquet (zstd). Goal: <= 30 s for 1,000,000 events.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy import create_engine, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.analytics import export, open_engine
from gateway.analytics.schema import EXPORT_COLUMNS, events, metadata

GOAL_S = 30.0
BATCH = 50_000


def _row(number: int, rng: random.Random, start: float) -> dict[str, Any]:
    kind = ("message", "message", "reply", "reply", "reaction")[number % 5]
    row: dict[str, Any] = dict.fromkeys(EXPORT_COLUMNS)
    ts = start + number * 0.5
    row |= {
        "event_id": f"{number:032x}",
        "kind": kind,
        "ts": ts,
        "key": f"{rng.getrandbits(96):024x}",
        "platform": ("discord", "telegram", "slack", "webchat")[number % 4],
        "conversation_id": f"{rng.getrandbits(96):024x}",
        "user_id": f"{rng.getrandbits(96):024x}",
    }
    if kind == "message":
        row |= {"bot_id": "bot-1", "decision": "queued", "reason": "", "ts_ingress": ts, "ts_enqueue": ts + 0.002,
                "text_chars": rng.randint(1, 400), "attachments": 0, "is_direct": number % 3 == 0}  # fmt: skip
    elif kind == "reply":
        row |= {
            "reply_ids": json.dumps([f"{rng.getrandbits(96):024x}"]),
            "ts_worker_start": ts - 1.2, "ts_llm_done": ts - 0.05, "ts_egress": ts,
            "llm_provider": "openai", "llm_model": "gpt-4o-mini", "prompt_tokens": rng.randint(100, 900),
            "completion_tokens": rng.randint(10, 200), "cost_usd": rng.random() / 1000, "cache_hit": number % 7 == 0,
            "patches": json.dumps([{"patch": "memory_enhancement", "method": "recall", "outcome": "applied", "reason": None}]),
            "variants": json.dumps({"memory_enhancement": number % 2 == 0}), "voice": False,
        }  # fmt: skip
    else:
        row |= {"value": 1 if number % 4 else -1}
    return row


def fill(sync_url: str, count: int) -> None:
    engine = create_engine(sync_url)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    rng, start = random.Random(7), time.time() - count
    with engine.begin() as conn:
        for first in range(0, count, BATCH):
            conn.execute(events.insert(), [_row(n, rng, start) for n in range(first, min(first + BATCH, count))])
    engine.dispose()


async def plain_select(engine: AsyncEngine) -> int:
    columns = [events.c[name] for name in EXPORT_COLUMNS]
    total, last_id = 0, 0
    async with engine.connect() as conn:
        while True:
            page = select(events.c.id, *columns).where(events.c.id > last_id).order_by(events.c.id).limit(BATCH)
            rows = [tuple(row) for row in await conn.execute(page)]
            if not rows:
                return total
            last_id = rows[-1][0]
            total += len(rows)


async def measure(url: str, out: Path) -> tuple[float, float, int]:
    engine = await open_engine(url)
    started = time.perf_counter()
    selected = await plain_select(engine)
    select_s = time.perf_counter() - started
    started = time.perf_counter()
    exported = await export(engine, "parquet", None, None, out)
    export_s = time.perf_counter() - started
    await engine.dispose()
    assert selected == exported == pq.ParquetFile(out).metadata.num_rows
    return select_s, export_s, exported


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="async SQLAlchemy URL (default: a temporary SQLite file)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="patchbay-export-bench-") as directory:
        url = options.database_url or f"sqlite+aiosqlite:///{directory}/bench.db"
        sync_url = url.replace("+aiosqlite", "")
        started = time.perf_counter()
        fill(sync_url, options.events)
        print(f"filled {options.events:,} events in {time.perf_counter() - started:.1f} s (not timed below)")
        out = Path(directory) / "events.parquet"
        select_s, export_s, rows = asyncio.run(measure(url, out))
        size_mb = out.stat().st_size / 1e6
    print(f"plain SELECT of the same rows:  {select_s:6.2f} s (1.00)")
    print(f"export to Parquet:              {export_s:6.2f} s ({export_s / select_s:.2f}x the SELECT), "
          f"{rows / export_s:,.0f} events/s, {size_mb:.1f} MB")  # fmt: skip
    print(
        f"goal <= {GOAL_S:.0f} s for 1,000,000 events: {'met' if export_s * 1_000_000 / rows <= GOAL_S else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
