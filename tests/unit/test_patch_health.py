"""Auto-disable on a failing window, one probe after the cool-down, recovery — on an injected clock."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from patches.context import call_context
from patches.health import HealthMonitor, HealthState
from patches.runtime import PatchRuntime
from tests.unit.test_patch_toys import Behaviour, ToyConfig, ToyLLM, layer_over, llm_spec, request


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


HEALTH: dict[str, Any] = {
    "health_max_error_rate": 0.5,
    "health_window_s": 60.0,
    "health_min_calls": 10,
    "health_cooldown_s": 30.0,
}


async def test_a_failing_patch_is_disabled_then_probed_back_on(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    behaviour = Behaviour(mode="raise")
    health = HealthMonitor(now=clock)
    layer = layer_over(
        llm_spec("flaky", behaviour), ToyConfig(enabled=True, **HEALTH), ToyLLM(), PatchRuntime(health=health)
    )
    monitor = health.get("flaky")
    assert monitor is not None

    with caplog.at_level(logging.INFO, logger="patches.health"):
        for _ in range(9):  # below health_min_calls: never judged, however bad
            await layer.complete(request())
            clock.now += 1
        assert monitor.state is HealthState.OK
        await layer.complete(request())  # the 10th failure in the window
        assert monitor.state is HealthState.AUTO_DISABLED
        disabled_logs = [r for r in caplog.records if "auto-disabled" in r.getMessage()]
        assert len(disabled_logs) == 1 and disabled_logs[0].levelno == logging.ERROR
        assert "100% of 10 calls" in disabled_logs[0].getMessage()

        with call_context(user_id="u1") as context:
            assert (await layer.complete(request("x"))).text == "base: x"
        assert [(e.outcome, e.reason) for e in context.trace] == [("skipped", "auto-disabled")]

        clock.now += 30  # cool-down over, but the enhancement still fails: the probe fails
        await layer.complete(request())
        assert monitor.state is HealthState.AUTO_DISABLED
        await layer.complete(request())  # cool-down restarted: skipped, not probed
        assert (await layer.complete(request("x"))).text == "base: x"

        behaviour.mode = "ok"
        clock.now += 30
        assert (await layer.complete(request("x"))).text == "flaky(base: x)"  # the probe succeeds
        assert monitor.state is HealthState.OK
        assert (await layer.complete(request("x"))).text == "flaky(base: x)"
    assert any("re-enabled" in r.getMessage() for r in caplog.records)


def test_only_one_probe_goes_through_after_the_cool_down() -> None:
    clock = Clock()
    health = HealthMonitor(now=clock).track("p", ToyConfig(**HEALTH))
    for _ in range(10):
        health.record(False)
    assert health.state is HealthState.AUTO_DISABLED
    assert health.allow() is False
    clock.now += 30
    assert health.allow() is True  # the probe
    assert health.state is HealthState.PROBING
    assert health.allow() is False  # everyone else waits for its outcome


def test_old_failures_leave_the_sliding_window() -> None:
    clock = Clock()
    health = HealthMonitor(now=clock).track("p", ToyConfig(**HEALTH))
    for _ in range(8):
        health.record(False)
    clock.now += 61  # those failures are now outside the 60 s window
    for _ in range(4):
        health.record(False)
    for _ in range(6):
        health.record(True)
    assert health.state is HealthState.OK  # 4 of 10 in the window: under 50%
    health.record(False)
    health.record(False)
    assert health.state is HealthState.OK  # 6 of 12 is at the limit, not past it
    health.record(False)
    assert health.state is HealthState.AUTO_DISABLED  # 7 of 13


def test_a_success_in_the_newest_bucket_is_counted_on_the_fast_path() -> None:
    clock = Clock()
    health = HealthMonitor(now=clock).track("p", ToyConfig(**HEALTH))
    health.record_ok()  # the first call opens a bucket through the locked path
    for _ in range(5):
        health.record_ok()
    clock.now += 3.0  # the next bucket (60 s / 20)
    health.record_ok()
    health.record(False)
    snapshot = health.snapshot()
    assert (snapshot.calls, snapshot.failures) == (8, 1)
