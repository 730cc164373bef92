"""Each cause of loss the chaos runs found, reproduced alone on real processes, and answered exactly once.

A real gateway and real Celery worker processes (``tests/e2e/harness.py``) on a real ``redis-server``
with AOF (``RedisServer``) that the tests stop, kill and start again; the LLM simulator answers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.sim.llm import SimulatorProcess
from gateway.shared import keys
from gateway.shared.queue import QUEUE, TASK_NAME, producer
from gateway.shared.settings import Settings
from tests.e2e.harness import Cluster, RedisServer, wait_until
from tests.e2e.platform_helpers import Platforms

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    redis_server = RedisServer(tmp_path / "redis").start()
    try:
        yield redis_server
    finally:
        redis_server.send_signal(signal.SIGKILL)


@pytest.fixture
def llm() -> Iterator[SimulatorProcess]:
    simulator = SimulatorProcess()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def cluster(server: RedisServer, llm: SimulatorProcess, tmp_path: Path) -> Iterator[Cluster]:
    env = {
        "PATCHBAY_LLM_MODEL": "openai/sim-model",
        "PATCHBAY_LLM_API_BASE": llm.base_url,
        "OPENAI_API_KEY": "sk-test",
        "PATCHBAY_EMBEDDING_MODEL": "hash",
        "PATCHBAY_CLAIM_LEASE": "3",
        "PATCHBAY_REPLY_TIMEOUT": "90",
    }
    with Cluster(server.url, tmp_path / "data", env) as running:
        yield running


def _settle(server: RedisServer) -> None:
    """Until nothing is open in the ledger and nothing is queued: any second reply would have happened by then."""
    client = server.client()
    wait_until(
        lambda: client.zcard(keys.LEDGER_OPEN) == 0 and client.llen(QUEUE) == 0,
        timeout_s=120,
        what="the ledger to settle",
    )
    time.sleep(0.5)  # the worker logs "replied" just after it finishes the message


def _replied_lines(cluster: Cluster, key: str) -> int:
    return sum(
        1
        for name in [f"worker{i}" for i in range(len(cluster.workers))]
        for line in (cluster.log_dir / f"{name}.log").read_text(errors="replace").splitlines()
        if f" replied key={key} " in line
    )


def _chat(cluster: Cluster, user: str, text: str, message_id: str) -> httpx.Response:
    """Send as a site does: a 503 means nothing was stored, so the same message id is sent again after Retry-After."""
    deadline = time.monotonic() + 60
    while True:
        response = cluster.chat(user, text, message_id=message_id)
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        time.sleep(float(response.headers.get("retry-after", "1")))


def test_a_task_the_broker_lost_is_dispatched_again(cluster: Cluster, server: RedisServer) -> None:
    cluster.start_gateway()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(_chat, cluster, "ann", "are you there?", "lost-1")
        client = server.client()
        wait_until(lambda: client.llen(QUEUE) == 1, what="the task to be queued")
        client.delete(QUEUE)  # the broker loses it (a worker killed between the queue pop and its unacked record)
        cluster.start_worker()
        response = pending.result(timeout=120)
    assert response.status_code == 200, response.text
    assert "are you there?" in response.json()["text"]
    _settle(server)
    assert _replied_lines(cluster, "webchat:webchat:dm-ann:lost-1") == 1
    assert "reaper: dispatched again 1 message(s)" in cluster.logs("worker0")


def test_a_busy_copy_never_destroys_the_holders_message(
    cluster: Cluster, server: RedisServer, llm: SimulatorProcess
) -> None:
    cluster.start(workers=1)
    llm.configure(latency_ms=4000)
    key = "webchat:webchat:dm-bea:busy-1"
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(_chat, cluster, "bea", "slow one", "busy-1")
        wait_until(lambda: llm.stats()["chat_requests"] >= 1, what="the worker to call the LLM")
        # A redelivered copy of the task while its holder still works: it must be left alone...
        copy = producer(Settings(redis_url=server.url))
        copy.send_task(TASK_NAME, args=[key, 0], queue=QUEUE)
        wait_until(lambda: f"skip key={key} claim=busy" in cluster.logs("worker0"), what="the copy to be skipped")
        # ... so that when the holder dies, the message is still there to be answered.
        cluster.kill_worker(cluster.workers[0])
        llm.configure(latency_ms=0)
        cluster.start_worker()
        response = pending.result(timeout=120)
    assert response.status_code == 200, response.text
    _settle(server)
    assert _replied_lines(cluster, key) == 1
    assert llm.stats()["chat_requests"] == 2  # the dead holder's call, and the one that answered


def test_workers_survive_redis_restarts_and_lose_nothing(
    cluster: Cluster, server: RedisServer, llm: SimulatorProcess
) -> None:
    # More messages than threads and a slow LLM: each worker holds tasks delivered but not started when
    # Redis goes away, the state in which kombu's stock transport stopped the worker ("Unrecoverable error").
    cluster.start(workers=2, concurrency=8)
    llm.configure(latency_ms=700)
    sent: list[str] = []
    for signal_name in (signal.SIGTERM, signal.SIGKILL):
        ids = [f"{signal_name.name}-{i}" for i in range(36)]
        sent.extend(ids)
        with ThreadPoolExecutor(len(ids)) as pool:
            pending = [pool.submit(_chat, cluster, f"user-{mid}", f"hello {mid}", mid) for mid in ids]
            wait_until(lambda: llm.stats()["chat_requests"] >= len(sent) - 30, what="the workers to be busy")
            server.restart(signal_name, down_s=1.0)
            responses = [future.result(timeout=150) for future in pending]
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    for worker in cluster.workers:
        assert worker.poll() is None, f"a worker exited after a Redis restart:\n{cluster.logs('worker0')}"
    _settle(server)
    for message_id in sent:
        assert _replied_lines(cluster, f"webchat:webchat:dm-user-{message_id}:{message_id}") == 1, message_id
    unrecoverable = [name for name in ("worker0", "worker1") if "Unrecoverable error" in cluster.logs(name)]
    assert not unrecoverable, unrecoverable


def test_webchat_gets_a_retry_status_while_redis_is_down(cluster: Cluster, server: RedisServer) -> None:
    cluster.start(workers=1)
    server.send_signal(signal.SIGTERM)
    response = cluster.chat("cy", "anyone?", message_id="down-1")
    assert response.status_code == 503, response.text
    assert response.headers.get("retry-after") == "2"
    server.start()
    again = cluster.chat("cy", "anyone?", message_id="down-1")  # the client sends the same message again
    assert again.status_code == 200, again.text
    _settle(server)
    assert _replied_lines(cluster, "webchat:webchat:dm-cy:down-1") == 1


def test_polled_telegram_updates_wait_in_the_spool_while_redis_is_down(cluster: Cluster, server: RedisServer) -> None:
    platforms = Platforms()
    try:
        platforms.start(slack_events_url=cluster.url + "/slack/events")
        env = platforms.env()
        for unused in ("DISCORD_BOT_TOKEN", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"):
            env.pop(unused)
        cluster.env.update(env)
        cluster.start(workers=1)
        wait_until(lambda: _telegram_connected(cluster), what="telegram to connect")
        server.send_signal(signal.SIGTERM)
        chat = 4242
        for n in range(5):
            platforms.call(platforms.telegram.user_message(chat, f"in order {n}", user_id=chat))
        spool = cluster.data_dir / "spool"
        wait_until(lambda: len(list(spool.glob("*.json"))) == 5, what="five updates in the spool")
        server.start()
        wait_until(lambda: len(platforms.sent("telegram")) == 5, timeout_s=120, what="five replies")
        texts = [record.text for record in platforms.sent("telegram")]
        assert [int(t.split("in order ", 1)[1].split()[0].strip("'\".,")) for t in texts] == list(range(5)), texts
        assert not list(spool.glob("*.json"))
        assert "spooled key=telegram:" in cluster.logs("gateway")
    finally:
        cluster.stop()
        platforms.close()


def _telegram_connected(cluster: Cluster) -> bool:
    try:
        health = httpx.get(cluster.url + "/healthz", timeout=5).json()
    except (httpx.HTTPError, json.JSONDecodeError):
        return False
    return bool(health["checks"]["platforms"]["telegram"]["state"] == "connected")


def test_settings_that_cannot_work_together_are_refused_at_start_up(tmp_path: Path) -> None:
    env: dict[str, Any] = {"PATCHBAY_CLAIM_LEASE": "10", "PATCHBAY_VISIBILITY_TIMEOUT": "8", "REDIS_URL": "redis://x"}
    for command in ("worker", "gateway"):
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "gateway.cli", command],
            env={**os.environ, **env, "PATCHBAY_DATA_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "PATCHBAY_VISIBILITY_TIMEOUT=8 is shorter than twice PATCHBAY_CLAIM_LEASE=10" in result.stderr
        assert time.monotonic() - started < 30


def test_a_message_that_keeps_killing_its_workers_is_answered_with_an_apology_and_releases_its_successor(
    cluster: Cluster, server: RedisServer, llm: SimulatorProcess
) -> None:
    cluster.env["PATCHBAY_MAX_ATTEMPTS"] = "1"
    cluster.start(workers=1)
    llm.configure(latency_ms=5000)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(_chat, cluster, "dot", "the one that crashes", "crash-1")
        wait_until(lambda: llm.stats()["chat_requests"] >= 1, what="the worker to call the LLM")
        second = pool.submit(_chat, cluster, "dot", "the one after it", "after-1")
        wait_until(lambda: server.client().zcard(keys.conversation_open("webchat:webchat:dm-dot")) == 2, what="both")
        cluster.kill_worker(cluster.workers[0])  # its one allowed attempt dies with it
        llm.configure(latency_ms=0)
        cluster.start_worker()
        apology, answer = first.result(timeout=120), second.result(timeout=120)
    assert apology.status_code == 200 and apology.json()["reason"] == "abandoned", apology.text
    assert answer.status_code == 200 and "the one after it" in answer.json()["text"], answer.text
    _settle(server)
    record = server.client().hgetall(keys.message_record("webchat:webchat:dm-dot:crash-1"))
    assert record[b"outcome"] == b"abandoned"
