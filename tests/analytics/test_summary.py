"""The summary's figures on a known dataset, including the rollout-versus-control comparison."""

from __future__ import annotations

import math

import pytest

from gateway.analytics import AnalyticsWriter, EventSink, summary, timeseries, two_proportion_z_test

from .dataset import DAY, T0, seed


async def test_summary_figures_on_known_data(sink: EventSink, writer: AnalyticsWriter) -> None:
    await seed(sink)
    await writer.flush()
    report = await summary(await writer.engine(), T0 - 3600, T0 + DAY)

    assert report["messages"]["total"] == 5
    assert report["messages"]["by_platform"] == {"discord": 3, "slack": 1, "telegram": 1}
    assert report["messages"]["by_decision"] == {"queued": 4, "rate_limited": 1}
    engagement = report["engagement"]
    assert engagement["active_users"] == 4 and engagement["messages_per_user"] == 1.25
    assert engagement["by_day"] == [{"day": "2027-01-15", "active_users": 4, "returning_users": 1, "new_users": 3}]

    # Response times 1, 2, 3, 4 s: numpy's linear percentiles.
    assert report["response_time_ms"] == {"count": 4, "p50": 2500.0, "p95": 3850.0, "p99": 3970.0}
    stages = report["latency_breakdown_ms"]
    assert stages["admission"]["p50"] == pytest.approx(20.0)
    assert stages["queue_wait"]["p50"] == pytest.approx(80.0)
    assert stages["egress"]["p50"] == pytest.approx(50.0)
    assert stages["worker_and_llm"]["p50"] == pytest.approx(2500.0 - 150.0)

    assert report["satisfaction"] == {"reactions": 4, "positive": 3, "negative": 1, "rate": 0.75}
    assert report["cost"] == {"usd": 0.004, "per_reply_usd": 0.001, "prompt_tokens": 400, "completion_tokens": 80}
    assert report["replies"] == {"total": 4, "voice": 1, "degraded": 0, "errors": 0, "cache_hit_rate": 0.25}
    memory = report["patches"]["memory_enhancement"]
    assert (memory["applied"], memory["fallbacks"], memory["skipped"], memory["fallback_rate"]) == (1, 1, 2, 0.5)
    assert memory["fallback_reasons"] == {"timeout": 1}
    assert report["providers"]["openai"]["replies"] == 3 and report["providers"]["local"]["models"] == {"smollm2": 1}

    rollout = report["rollouts"]["memory_enhancement"]
    assert rollout["rollout"]["satisfaction"] == 1.0 and rollout["control"]["satisfaction"] == 0.5
    assert rollout["rollout"]["latency_p50_ms"] == 1500.0 and rollout["control"]["latency_p50_ms"] == 3500.0
    test = rollout["satisfaction"]
    assert test["difference"] == 0.5
    assert test["z"] == pytest.approx(1.155, abs=1e-3)  # 0.5 / sqrt(0.75 * 0.25 * (1/2 + 1/2))
    assert test["p_value"] == pytest.approx(0.2482, abs=1e-4)
    assert (test["ci95_low"], test["ci95_high"]) == pytest.approx((-0.193, 1.193), abs=1e-3)
    assert rollout["latency"]["difference_ms"] == -2000.0


async def test_an_empty_range_summarises_to_zeros(sink: EventSink, writer: AnalyticsWriter) -> None:
    await seed(sink)
    await writer.flush()
    report = await summary(await writer.engine(), T0 + 10 * DAY, T0 + 11 * DAY)
    assert report["messages"]["total"] == 0 and report["satisfaction"]["rate"] is None
    assert report["response_time_ms"]["p50"] is None and report["rollouts"] == {}


async def test_timeseries_buckets_the_same_data(sink: EventSink, writer: AnalyticsWriter) -> None:
    await seed(sink)
    await writer.flush()
    series = await timeseries(await writer.engine(), T0, T0 + 240, buckets=4)
    assert series["step_s"] == 60.0 and len(series["buckets"]) == 4
    assert series["platforms"] == {"discord": [1, 1, 1, 0], "slack": [0, 0, 0, 1], "telegram": [0, 0, 1, 0]}
    assert series["latency_ms"]["p50"] == [1000.0, 2000.0, 3000.0, 4000.0]
    assert series["satisfaction"] == [1.0, 1.0, 0.0, 1.0]
    assert sum(series["cost_usd"]) == pytest.approx(0.004)


def test_z_test_against_a_textbook_example() -> None:
    # 45/100 vs 30/100: pooled p = 0.375, z = 0.15 / sqrt(0.375 * 0.625 * 0.02) = 2.191, p = 0.0285.
    result = two_proportion_z_test(45, 100, 30, 100)
    assert result["z"] == pytest.approx(2.191, abs=1e-3)
    assert result["p_value"] == pytest.approx(0.0285, abs=1e-4)
    half_width = 1.96 * math.sqrt(0.45 * 0.55 / 100 + 0.3 * 0.7 / 100)
    assert result["ci95_low"] == pytest.approx(0.15 - half_width, abs=1e-4)
    assert two_proportion_z_test(0, 0, 1, 2)["z"] is None
