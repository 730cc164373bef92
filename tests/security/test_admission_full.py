"""Admission against a Redis that refuses writes (over its cap): the answer is busy, never an error or a loss.

The gateway normally closes admission before the cap (``MemoryPressure``, tested end to end in
test_edge); this is the path behind it, when Redis itself answers OOM.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from adapters.base import Admission
from gateway.admission import Admitter
from gateway.embedded_redis import EmbeddedRedis
from gateway.limits import Guard
from gateway.limits.pressure import MemoryPressure
from gateway.shared.envelope import Envelope, Platform
from gateway.shared.queue import producer
from gateway.shared.settings import Settings

MB = 1024 * 1024


@pytest.fixture
async def full_redis(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedRedis, aioredis.Redis]]:
    server = EmbeddedRedis(tmp_path / "redis", persist=False, maxmemory="8mb").start()
    client = aioredis.Redis(unix_socket_path=str(server.socket))
    try:
        yield server, client
    finally:
        await client.aclose()
        server.stop()


def _envelope(text: str = "hello") -> Envelope:
    return Envelope(
        platform=Platform.TELEGRAM, bot_id="1", conversation_id="2", message_id=str(time.time_ns()), author_id="3",
        is_direct=True, text=text,
    )  # fmt: skip


async def test_a_redis_refusing_writes_makes_admission_answer_busy(full_redis, tmp_path: Path) -> None:
    server, client = full_redis
    celery = producer(Settings(redis_url=server.url, data_dir=tmp_path))
    admitter = Admitter(client, celery, guard=Guard(client))
    try:
        assert (await admitter.admit(_envelope())).decision == Admission.QUEUED
        await client.set("filler", b"x" * MB)
        await client.config_set("maxmemory", int((await client.info("memory"))["used_memory"]) - MB // 4)
        result = await admitter.admit(_envelope("while full"))
        assert result.decision == Admission.BUSY and "send it again" in (result.notice or "")
        assert await client.llen("patchbay") == 1  # the first message is still queued, nothing half-queued
        pressure = MemoryPressure(client)
        assert await pressure.sample() > 1.0 and pressure.full
        await client.config_set("maxmemory", 0)  # no cap: never under pressure
        assert await pressure.sample() == 0.0 and not pressure.full
        assert (await admitter.admit(_envelope("after"))).decision == Admission.QUEUED
    finally:
        celery.close()
