"""Runtime switches: written by one process, seen by another; kept when Redis goes away."""

from __future__ import annotations

import logging
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from gateway.embedded_redis import EmbeddedRedis
from patches.switches import Switch, SwitchBoard, clear, set_enabled, set_rollout

DEADLINE_S = 10.0  # generous: the requirement is 2 s, this only bounds a broken test

# A second worker-like process: a real layer over a toy base, its switches refreshed from Redis,
# printing what the layer answers whenever that changes.
CHILD = """
import asyncio, sys
from patches.runtime import PatchRuntime
from tests.unit.test_patch_toys import ToyConfig, ToyLLM, llm_spec, request

async def main():
    runtime = PatchRuntime()
    runtime.start(sys.argv[1], poll_interval_s=0.5, prometheus=None)
    layer = await runtime.apply(llm_spec("toy"), ToyLLM(), ToyConfig(enabled=True))
    last = None
    while True:
        text = (await layer.complete(request("x"))).text
        if text != last:
            print(text, flush=True)
            last = text
        await asyncio.sleep(0.02)

asyncio.run(main())
"""


@pytest.fixture
def child_output(redis_url: str, redis_client: redis.Redis) -> Iterator[Callable[[str], None]]:
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, redis_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None and process.stderr is not None
    stdout, stderr = process.stdout, process.stderr

    def pump() -> None:  # a thread, so the test can wait with a deadline instead of blocking on readline
        for line in stdout:
            lines.put(line.strip())

    threading.Thread(target=pump, daemon=True).start()

    def wait_for(expected: str) -> None:
        deadline = time.monotonic() + DEADLINE_S
        seen = []
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                if process.poll() is not None:
                    pytest.fail(f"the child exited: {stderr.read()}")
                continue
            seen.append(line)
            if line == expected:
                return
        pytest.fail(f"the child never answered {expected!r}; it said {seen}")

    try:
        yield wait_for
    finally:
        process.kill()
        process.wait()


def test_a_switch_written_here_reaches_a_running_second_process(
    redis_client: redis.Redis, child_output: Callable[[str], None]
) -> None:
    child_output("toy(base: x)")  # enabled by config
    set_enabled(redis_client, "toy", False)
    child_output("base: x")
    clear(redis_client, "toy")  # back to the config: enabled
    child_output("toy(base: x)")
    set_rollout(redis_client, "toy", 0)  # the child's user is outside a 0% rollout
    child_output("base: x")


def test_the_board_reads_the_hash_only_when_the_version_moves(redis_client: redis.Redis) -> None:
    board = SwitchBoard()
    assert board.refresh_once(redis_client) is False  # nothing stored yet
    set_enabled(redis_client, "a", False)
    set_rollout(redis_client, "a", 25)
    assert board.refresh_once(redis_client) is True
    assert board.get("a") == Switch(enabled=False, rollout_percent=25.0)
    assert board.refresh_once(redis_client) is False
    with pytest.raises(ValueError, match="between 0 and 100"):
        set_rollout(redis_client, "a", 101)


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        time.sleep(0.02)


def test_the_last_known_switches_survive_a_redis_outage(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = EmbeddedRedis(tmp_path / "redis", persist=False).start()
    board = SwitchBoard()
    try:
        writer = redis.Redis.from_url(server.url)
        set_enabled(writer, "toy", False)
        writer.close()
        with caplog.at_level(logging.INFO, logger="patches.switches"):
            board.start_background_thread(server.url, interval_s=0.02)
            assert board.get("toy") == Switch(enabled=False)
            server.stop()
            wait_until(lambda: board.refresh_errors >= 10)  # many failed polls...
            assert board.stale
            assert board.get("toy") == Switch(enabled=False)  # ...and the kill switch still holds
            stale_logs = [r for r in caplog.records if "keeping the last known state" in r.getMessage()]
            assert len(stale_logs) == 1  # said once, not once per poll
            server.start()
            wait_until(lambda: not board.stale)
        assert sum("reachable again" in r.getMessage() for r in caplog.records) == 1
    finally:
        board.stop()
        server.stop()
