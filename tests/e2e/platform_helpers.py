"""The three platform simulators on a background event loop, wired to a real gateway cluster.

End-to-end tests run the gateway and the workers as subprocesses (``tests/e2e/harness.py``); the
simulators stay in the test process so that the test can read what the bot sent directly. They
need a running event loop of their own while the test thread blocks on HTTP calls and
``wait_until``, hence one loop in a daemon thread and ``Platforms.call`` to run coroutines on it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx
import redis

from adapters.sim import DiscordSimulator, SlackSimulator, TelegramSimulator
from adapters.sim.common import SentRecord, SimServer
from adapters.sim.discord import DEFAULT_DISCORD_TOKEN
from adapters.sim.slack import DEFAULT_SIGNING_SECRET, DEFAULT_SLACK_TOKEN
from adapters.sim.telegram import DEFAULT_TELEGRAM_TOKEN
from adapters.webchat.outbound import REPLY_CHANNEL
from gateway.shared.keys import LEDGER_OPEN
from tests.e2e.harness import Cluster, wait_until

__all__ = [
    "DISCORD_OPEN_CHANNEL",
    "TELEGRAM_WEBHOOK_SECRET",
    "Platforms",
    "WebchatTap",
    "platform_state",
    "queue_drained",
    "running_platforms",
    "wait_connected",
]

T = TypeVar("T")

DISCORD_OPEN_CHANNEL = "811"  # answered without a mention (DISCORD_CHANNELS)
TELEGRAM_WEBHOOK_SECRET = "e2e-telegram-webhook-secret"


class Platforms:
    """Discord, Telegram and Slack simulators served from one event loop in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="platform-sims", daemon=True)
        self._thread.start()
        self.discord = DiscordSimulator(port=0)
        self.telegram = TelegramSimulator(port=0)
        self.slack = SlackSimulator(port=0)

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def call(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 60) -> T:
        """Run ``coroutine`` on the simulators' loop and wait for its result."""
        return self.submit(coroutine).result(timeout_s)

    def by_name(self, platform: str) -> SimServer:
        return {"discord": self.discord, "telegram": self.telegram, "slack": self.slack}[platform]

    def start(self, *, slack_events_url: str) -> None:
        self.slack.events_url = slack_events_url
        for server in (self.discord, self.telegram, self.slack):
            self.call(server.start())

    def stop_one(self, platform: str) -> None:
        self.call(self.by_name(platform).stop())

    def restart_one(self, platform: str) -> None:
        """Serve ``platform`` again on the same port, with the same state: the outage is over."""
        self.call(self.by_name(platform).start())

    def close(self) -> None:
        for server in (self.discord, self.telegram, self.slack):
            self.call(server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    def env(self, *, telegram_webhook_url: str | None = None) -> dict[str, str]:
        """What the gateway and the workers need to reach the three simulators."""
        env = {
            # These tests are about delivery: the hashing embedder keeps memory from dominating the run time.
            "PATCHBAY_EMBEDDING_MODEL": "hash",
            "DISCORD_BOT_TOKEN": DEFAULT_DISCORD_TOKEN,
            "DISCORD_API_BASE_URL": self.discord.api_base_url,
            "DISCORD_GATEWAY_URL": self.discord.gateway_url,
            "DISCORD_CHANNELS": DISCORD_OPEN_CHANNEL,
            "TELEGRAM_BOT_TOKEN": DEFAULT_TELEGRAM_TOKEN,
            "TELEGRAM_API_BASE_URL": self.telegram.base_url,
            "SLACK_BOT_TOKEN": DEFAULT_SLACK_TOKEN,
            "SLACK_SIGNING_SECRET": DEFAULT_SIGNING_SECRET,
            "SLACK_API_BASE_URL": self.slack.base_url,
        }
        if telegram_webhook_url is not None:
            env["TELEGRAM_WEBHOOK_URL"] = telegram_webhook_url
            env["TELEGRAM_WEBHOOK_SECRET"] = TELEGRAM_WEBHOOK_SECRET
        return env

    def sent(self, platform: str) -> list[SentRecord]:
        # A copy taken on the simulators' loop: the list is appended to there.
        async def snapshot() -> list[SentRecord]:
            return list(self.by_name(platform).sent)

        return self.call(snapshot())


def platform_state(cluster: Cluster, platform: str) -> str:
    health = httpx.get(cluster.url + "/healthz", timeout=10).json()
    return str(health["checks"]["platforms"][platform]["state"])


def queue_drained(client: redis.Redis) -> bool:
    # Nothing queued, and nothing recorded but unfinished: every admitted message was answered (or why not).
    return client.llen("patchbay") == 0 and client.hlen("unacked") == 0 and client.zcard(LEDGER_OPEN) == 0


def wait_connected(cluster: Cluster, platforms: tuple[str, ...] = ("discord", "telegram", "slack")) -> None:
    """Until every platform shows ``connected`` in /healthz (Telegram's webhook is set, Discord identified)."""
    for platform in platforms:
        wait_until(
            lambda platform=platform: platform_state(cluster, platform) == "connected",
            timeout_s=60,
            interval_s=0.2,
            what=f"{platform} to connect",
        )


@contextmanager
def running_platforms(
    cluster: Cluster, env: dict[str, str], *, telegram_webhook: bool = False, workers: int = 2
) -> Iterator[Platforms]:
    """Start the simulators, then the cluster (gateway + ``workers`` workers) pointed at them."""
    platforms = Platforms()
    try:
        platforms.start(slack_events_url=cluster.url + "/slack/events")
        webhook = cluster.url + "/telegram/webhook" if telegram_webhook else None
        cluster.env.update({**env, **platforms.env(telegram_webhook_url=webhook)})
        cluster.start(workers=workers)
        wait_connected(cluster)
        if telegram_webhook:
            wait_until(lambda: platforms.telegram.webhook_url == webhook, what="the Telegram webhook to be set")
        yield platforms
    finally:
        cluster.stop()
        platforms.close()


class WebchatTap:
    """Counts web chat replies per message key as workers publish them (the gateway's own channel)."""

    def __init__(self, client: redis.Redis) -> None:
        self.counts: Counter[str] = Counter()
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(**{REPLY_CHANNEL: self._on_reply})
        self._thread = self._pubsub.run_in_thread(sleep_time=0.05, daemon=True)

    def _on_reply(self, message: dict[str, Any]) -> None:
        self.counts[json.loads(message["data"])["in_reply_to_key"]] += 1

    def close(self) -> None:
        self._thread.stop()
        self._thread.join(timeout=10)  # the reader must be done before its connection closes
        self._pubsub.close()
