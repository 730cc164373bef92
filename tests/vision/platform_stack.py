"""A gateway, one worker and the three platform simulators, with the LLM simulator as a given model."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from adapters.sim.common import SentRecord
from adapters.sim.llm import SimulatorProcess
from tests.e2e.harness import Cluster, wait_until
from tests.e2e.platform_helpers import Platforms, queue_drained, running_platforms

MAX_SIDE = 512


@dataclass(slots=True)
class VisionStack:
    cluster: Cluster
    platforms: Platforms
    llm: SimulatorProcess
    redis: redis.Redis

    def replies(self, platform: str, chat_id: str) -> list[SentRecord]:
        return [record for record in self.platforms.sent(platform) if record.chat_id == chat_id]

    def one_reply(self, platform: str, chat_id: str) -> SentRecord:
        """The reply in ``chat_id`` once the queue is drained, asserting it is the only one."""
        wait_until(lambda: self.replies(platform, chat_id), timeout_s=90, what=f"a reply on {platform} {chat_id}")
        wait_until(lambda: queue_drained(self.redis), what="the queue to drain")
        time.sleep(0.3)  # a second reply, were there one, would be sent by now
        found = self.replies(platform, chat_id)
        assert len(found) == 1, [record.text for record in found]
        return found[0]

    def images_seen(self) -> list[dict[str, Any]]:
        return list(self.llm.stats()["images"])

    def reply_events(self) -> list[dict[str, Any]]:
        """The analytics reply events' extra fields (images among them), as the gateway's writer stored them."""
        import json

        database = self.cluster.data_dir / "patchbay.db"
        try:
            with sqlite3.connect(database) as db:
                rows = db.execute("SELECT extra FROM analytics_events WHERE kind = 'reply'").fetchall()
        except sqlite3.OperationalError:  # the table is created by the writer's first batch
            return []
        return [json.loads(extra) for (extra,) in rows if extra]


@contextmanager
def vision_stack(
    redis_url: str, data_dir: Path, *, model: str, env: dict[str, str] | None = None
) -> Iterator[VisionStack]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    llm = SimulatorProcess()
    settings = {
        "PATCHBAY_LLM_MODEL": model,
        "PATCHBAY_LLM_API_BASE": llm.base_url,
        "OPENAI_API_KEY": "sk-test",
        "PATCHBAY_VISION_MAX_SIDE": str(MAX_SIDE),
        **(env or {}),
    }
    cluster = Cluster(redis_url, data_dir)
    try:
        with running_platforms(cluster, settings, workers=1) as platforms:
            yield VisionStack(cluster, platforms, llm, client)
    finally:
        llm.stop()
        client.close()
