"""Events go through Redis into SQL without loss, and come out of every export format pseudonymised."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import redis
from click.testing import CliRunner

from gateway.analytics import AnalyticsSettings, AnalyticsWriter, EventSink, Pseudonymiser, export, parse_time, summary
from gateway.analytics.cli import analytics_group
from gateway.analytics.schema import EXPORT_COLUMNS

from .conftest import ANALYTICS_KEY
from .dataset import RAW_IDS, T0, key_of, seed

hashed = Pseudonymiser(ANALYTICS_KEY.encode())


def _read(path: Path, fmt: str) -> list[dict[str, object]]:
    if fmt == "parquet":
        return pq.read_table(path).to_pylist()
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
async def test_export_round_trips_with_pseudonymised_ids(
    fmt: str, sink: EventSink, writer: AnalyticsWriter, tmp_path: Path
) -> None:
    seeded = await seed(sink)
    assert await writer.flush() == len(seeded)
    out = tmp_path / f"events.{fmt}"
    engine = await writer.engine()
    progress: list[int] = []
    assert await export(engine, fmt, None, None, out, progress=progress.append, batch_size=4) == len(seeded)  # type: ignore[arg-type]
    assert sum(progress) == len(seeded) and len(progress) == math.ceil(len(seeded) / 4)

    rows = {row["event_id"]: row for row in _read(out, fmt)}
    assert set(rows) == {event["event_id"] for event in seeded}
    assert set(next(iter(rows.values()))) == set(EXPORT_COLUMNS)
    for event in seeded:
        row = rows[event["event_id"]]
        assert row["kind"] == event["kind"] and row["platform"] == event["platform"]
        assert row["user_id"] == hashed(event["user_id"])
        if "key" in event:
            assert row["key"] == hashed(event["key"])
        if event["kind"] == "message":
            assert float(row["ts"]) == pytest.approx(event["ts_ingress"])  # type: ignore[arg-type]
            assert str(row["decision"]) == event["decision"] and int(row["text_chars"]) == 42  # type: ignore[call-overload]
        if event["kind"] == "reply":
            assert float(row["cost_usd"]) == pytest.approx(0.001)  # type: ignore[arg-type]
            patches = row["patches"] if fmt == "jsonl" else json.loads(str(row["patches"]))
            assert patches == event["patches"]
            reply_ids = row["reply_ids"] if fmt == "jsonl" else json.loads(str(row["reply_ids"]))
            assert reply_ids == [hashed(f"{event['platform']}:{rid}") for rid in event["reply_ids"]]
    content = out.read_bytes()
    for raw in RAW_IDS:
        assert raw.encode() not in content  # never a raw id, in any column
        assert all(raw not in json.dumps(row, default=str) for row in rows.values())


async def test_export_respects_the_time_range(sink: EventSink, writer: AnalyticsWriter, tmp_path: Path) -> None:
    seeded = await seed(sink)
    await writer.flush()
    out = tmp_path / "recent.jsonl"
    count = await export(await writer.engine(), "jsonl", T0 - 1, T0 + 100, out)
    expected = [e for e in seeded if T0 - 1 <= (e.get("ts_ingress") or e.get("ts_egress") or e["ts"]) < T0 + 100]
    assert count == len(expected) == len(out.read_text().splitlines())
    empty = tmp_path / "none.parquet"
    assert await export(await writer.engine(), "parquet", T0 + 10_000, None, empty) == 0
    assert pq.read_table(empty).num_rows == 0 and pq.read_table(empty).column_names == list(EXPORT_COLUMNS)


async def test_a_writer_dying_mid_batch_loses_and_duplicates_nothing(
    redis_url: str, database_url: str, data_dir: Path, sink: EventSink, writer: AnalyticsWriter, analytics_settings
) -> None:
    seeded = await seed(sink)
    # Writer "a" takes a batch and dies before inserting it; writer "b" takes one, commits, dies before deleting it.
    a = AnalyticsWriter(redis_url, database_url, data_dir=data_dir, settings=analytics_settings, name="a")
    b = AnalyticsWriter(redis_url, database_url, data_dir=data_dir, settings=analytics_settings, name="b")
    taken_by_a = await a._take(keys=[a.queue, a.processing], args=[3])
    taken_by_b = await b._take(keys=[b.queue, b.processing], args=[4])
    await b._store(list(taken_by_b))
    assert len(taken_by_a) == 3 and len(taken_by_b) == 4
    await b._engine.dispose()  # type: ignore[union-attr]
    # The surviving writer finds both processing lists (no heartbeat) and requeues them.
    assert await writer.recover() == 7
    await writer.flush()
    engine = await writer.engine()
    report = await summary(engine)
    assert report["messages"]["total"] == sum(1 for e in seeded if e["kind"] == "message")
    assert report["replies"]["total"] == sum(1 for e in seeded if e["kind"] == "reply")
    assert report["satisfaction"]["reactions"] == sum(1 for e in seeded if e["kind"] == "reaction")
    client = redis.Redis.from_url(redis_url)
    assert client.llen(writer.queue) == 0 and not client.keys(f"{writer.queue}:processing:*")


async def test_the_background_writer_drains_continuously(sink: EventSink, writer: AnalyticsWriter) -> None:
    import asyncio

    writer.start()
    seeded = await seed(sink)
    engine = await writer.engine()
    for _ in range(200):  # wait for the writer, whatever the machine's speed; no timing is asserted
        if (await summary(engine))["messages"]["total"] == 6:
            break
        await asyncio.sleep(0.05)
    await writer.stop()
    report = await summary(engine)
    assert report["messages"]["total"] == sum(1 for e in seeded if e["kind"] == "message")
    assert report["satisfaction"]["reactions"] == 4


async def test_unusable_events_are_dead_lettered_not_dropped(
    redis_url: str, sink: EventSink, writer: AnalyticsWriter
) -> None:
    client = redis.Redis.from_url(redis_url)
    client.lpush(writer.queue, b"not json", json.dumps({"kind": "mystery", "event_id": "x"}))
    assert await sink.emit(
        {"kind": "reaction", "platform": "slack", "key": key_of("m1", "slack"), "value": 1, "ts": T0}
    )
    assert await writer.flush() == 3
    assert client.llen(writer.dead_letter) == 2
    report = await summary(await writer.engine())
    assert report["satisfaction"]["reactions"] == 1


async def test_the_dead_letter_list_is_bounded_and_expires(
    redis_url: str, redis_client: redis.Redis, database_url: str, data_dir: Path
) -> None:
    """Observed: ten requests with a lone surrogate and a 5 MB id put 50 MB there, with no expiry."""
    settings = AnalyticsSettings(key=ANALYTICS_KEY, dead_letter_max=5, dead_letter_ttl_s=600)
    writer = AnalyticsWriter(redis_url, database_url, data_dir=data_dir, settings=settings)
    try:
        huge = json.dumps({"kind": "mystery", "event_id": "big", "user_id": "x" * 5_000_000})
        redis_client.lpush(writer.queue, *([b"not json"] * 9 + [huge] * 3))  # the huge ones newest
        assert await writer.flush() == 12
        dead = redis_client.lrange(writer.dead_letter, 0, -1)
        assert len(dead) == 5  # the newest five
        assert max(len(entry) for entry in dead) < 5000
        assert sum(entry.endswith(b"...[truncated]") for entry in dead) == 3
        assert 0 < redis_client.ttl(writer.dead_letter) <= 600
    finally:
        await writer.stop()


async def test_emit_failure_is_counted_not_raised(data_dir: Path) -> None:
    from gateway.analytics.sink import EMIT_FAILURES

    before = EMIT_FAILURES.labels("reply")._value.get()
    dead = EventSink(f"unix://{data_dir}/nothing-listens-here.sock")
    assert await dead.emit({"kind": "reply"}) is False
    assert dead.emit_sync({"kind": "reply"}) is False
    assert EMIT_FAILURES.labels("reply")._value.get() == before + 2
    await dead.aclose()


def test_analytics_key_is_generated_once_and_kept(data_dir: Path) -> None:
    from gateway.analytics import load_or_create_key

    first = load_or_create_key(None, data_dir)
    assert load_or_create_key(None, data_dir) == first and len(first) == 64
    assert (data_dir / "analytics.key").stat().st_mode & 0o777 == 0o600
    assert load_or_create_key("configured", data_dir) == b"configured"


def test_time_arguments() -> None:
    assert parse_time("2027-01-15T08:00:00") == T0
    assert parse_time("2027-01-15T08:00:00+00:00") == T0
    assert parse_time("24h", now=T0) == T0 - 86400
    assert parse_time(str(T0)) == T0
    assert parse_time(None) is None
    with pytest.raises(ValueError, match="ISO"):
        parse_time("last tuesday")


async def test_cli_export_and_summary(
    sink: EventSink, writer: AnalyticsWriter, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(sink)
    await writer.flush()
    monkeypatch.setenv("DATABASE_URL", database_url)
    out = tmp_path / "cli.csv"
    runner = CliRunner()
    result = await _in_thread(runner, ["export", "--format", "csv", "--out", str(out), "--since", "2027-01-15"])
    assert result.exit_code == 0, result.output
    assert "wrote 13 events" in result.output  # m0, two days earlier, is out of range
    assert len(_read(out, "csv")) == 13
    shown = await _in_thread(runner, ["summary", "--since", "2027-01-15"])
    assert shown.exit_code == 0, shown.output
    assert "discord=3" in shown.output and "satisfaction   0.75 of 4 reactions" in shown.output


async def _in_thread(runner: CliRunner, args: list[str]):  # type: ignore[no-untyped-def]
    import asyncio

    # The commands run their own event loop (asyncio.run), which cannot nest inside the test's.
    return await asyncio.to_thread(runner.invoke, analytics_group, args)
