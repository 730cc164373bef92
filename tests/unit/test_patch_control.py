"""Operations shared by the CLI and the admin API, the stats flusher, and the cluster collector."""

from __future__ import annotations

import json

import pytest
import redis
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from patches.cli import patches_group
from patches.context import call_context
from patches.control import (
    REGISTERED_KEY,
    PatchStatus,
    UnknownPatchError,
    disable,
    enable,
    list_patches,
    list_stacks,
    rollout,
)
from patches.health import HealthMonitor
from patches.metrics import HEALTH_KEY, ProcessStats, RedisPatchStatsCollector, StatsFlusher
from patches.registry import PatchRegistry
from patches.runtime import PatchRuntime
from tests.unit.test_patch_toys import Behaviour, BrokenLLM, ToyConfig, ToyLLM, llm_spec, request


def hget_text(client: redis.Redis, key: str, field: str) -> str:
    value = client.hget(key, field)
    assert isinstance(value, bytes), f"{key} has no field {field}"
    return value.decode()


def status_of(client: redis.Redis, name: str) -> PatchStatus:
    [status] = [s for s in list_patches(client) if s.name == name]
    return status


async def published(client: redis.Redis, *specs: object) -> PatchRuntime:
    """What a worker does at start-up: build its stack, then publish what it installed and applied."""
    registry = PatchRegistry(specs)  # type: ignore[arg-type]
    runtime = PatchRuntime()
    await runtime.build_stack(registry, {"llm": ToyLLM()}, kinds=("llm",))
    runtime.publish(client, registry)
    return runtime


async def test_list_shows_state_after_enable_disable_and_rollout(redis_client: redis.Redis) -> None:
    await published(redis_client, llm_spec("toy"))
    status = status_of(redis_client, "toy")
    assert (status.kind, status.enabled, status.enabled_by, status.rollout_percent) == ("llm", False, "config", 100.0)
    assert (status.health, status.calls, status.position, status.broken) == ("ok", 0, 1, False)
    assert list_stacks(redis_client) == {"llm": ["toy", "ToyLLM"]}

    enable(redis_client, "toy")
    assert (status_of(redis_client, "toy").enabled, status_of(redis_client, "toy").enabled_by) == (True, "switch")
    rollout(redis_client, "toy", 25)
    assert status_of(redis_client, "toy").rollout_percent == 25.0
    disable(redis_client, "toy")
    assert status_of(redis_client, "toy").enabled is False

    with pytest.raises(UnknownPatchError, match=r"no patch named 'nope'; known patches: .*toy"):
        disable(redis_client, "nope")
    with pytest.raises(ValueError, match="between 0 and 100"):
        rollout(redis_client, "toy", -1)


def test_an_installed_patch_can_be_switched_before_any_worker_published_it(redis_client: redis.Redis) -> None:
    enable(redis_client, "memory_enhancement")  # an entry point of this package: known from metadata alone
    assert list_patches(redis_client) == []  # listed once a worker publishes it


async def test_workers_publish_their_patches_counts_and_health(redis_url: str, redis_client: redis.Redis) -> None:
    registry = PatchRegistry(
        [llm_spec("toy", Behaviour(mode="raise")), llm_spec("refused", prerequisite=lambda c, d: "no API key")]
    )
    registry.mark_broken(
        "broken",
        "cannot load nowhere:SPEC: ModuleNotFoundError: No module named 'nowhere'",
        "entry point broken = nowhere:SPEC",
    )
    runtime = PatchRuntime()
    configs = {"toy": ToyConfig(enabled=True, health_min_calls=3), "refused": ToyConfig(enabled=True)}
    stack = await runtime.build_stack(registry, {"llm": ToyLLM()}, kinds=("llm",), configs=configs)
    with call_context(user_id="u1"):
        for _ in range(4):
            await stack["llm"].complete(request())  # three fallbacks, then auto-disabled
    runtime.publish(redis_client, registry)
    flusher = StatsFlusher(redis_url, runtime.stats, runtime.health)
    assert flusher.flush_once(redis_client)
    assert flusher.flush_once(redis_client)  # nothing new: writes nothing, adds nothing

    [broken, refused, toy] = list_patches(redis_client)
    assert (broken.name, broken.broken, broken.refused, broken.kind) == ("broken", True, True, "?")
    assert "No module named 'nowhere'" in broken.refusal_reason
    assert (refused.name, refused.refused, refused.refusal_reason, refused.position) == (
        "refused",
        True,
        "prerequisite not met: no API key",
        None,
    )
    assert (toy.enabled, toy.calls, toy.errors, toy.fallbacks, toy.skipped, toy.below_failed) == (True, 4, 3, 3, 1, 0)
    assert toy.fallback_rate == 1.0
    assert toy.health == "auto-disabled"
    assert json.loads(hget_text(redis_client, HEALTH_KEY, "toy"))["state"] == "auto-disabled"
    assert json.loads(hget_text(redis_client, REGISTERED_KEY, "toy"))["kind"] == "llm"

    registry_metrics = CollectorRegistry()
    registry_metrics.register(RedisPatchStatsCollector(redis_url))
    assert registry_metrics.get_sample_value("patchbay_patches_cluster_calls_total", {"patch": "toy"}) == 4
    assert registry_metrics.get_sample_value("patchbay_patches_cluster_fallbacks_total", {"patch": "toy"}) == 3
    health = registry_metrics.get_sample_value(
        "patchbay_patches_cluster_health", {"patch": "toy", "state": "auto-disabled"}
    )
    assert health == 1


async def test_a_failing_layer_below_is_listed_as_such_not_against_the_patch(
    redis_url: str, redis_client: redis.Redis
) -> None:
    registry = PatchRegistry([llm_spec("toy")])
    runtime = PatchRuntime()
    stack = await runtime.build_stack(
        registry, {"llm": BrokenLLM()}, kinds=("llm",), configs={"toy": ToyConfig(enabled=True)}
    )
    for _ in range(3):
        with pytest.raises(ConnectionError):
            await stack["llm"].complete(request())
    runtime.publish(redis_client, registry)
    assert StatsFlusher(redis_url, runtime.stats, runtime.health).flush_once(redis_client)
    toy = status_of(redis_client, "toy")
    assert (toy.calls, toy.errors, toy.fallbacks, toy.below_failed, toy.health) == (3, 0, 0, 3, "ok")
    metrics = CollectorRegistry()
    metrics.register(RedisPatchStatsCollector(redis_url))
    assert metrics.get_sample_value("patchbay_patches_cluster_below_failed_total", {"patch": "toy"}) == 3


def test_the_flusher_keeps_counts_while_redis_is_away(redis_url: str, redis_client: redis.Redis) -> None:
    stats = ProcessStats()
    stats.for_patch("toy").calls_by_method["complete"] = 5
    flusher = StatsFlusher("unix:///nonexistent/redis.sock", stats, HealthMonitor())
    unreachable = redis.Redis(unix_socket_path="/nonexistent/redis.sock")
    assert flusher.flush_once(unreachable) is False
    assert flusher.failed_flushes == 1
    stats.for_patch("toy").calls_by_method["complete"] += 2
    assert flusher.flush_once(redis_client) is True
    assert int(hget_text(redis_client, "patchbay:patches:stats:toy", "calls")) == 7


async def test_cli_lists_and_switches(redis_url: str, redis_client: redis.Redis) -> None:
    await published(redis_client, llm_spec("toy", description="a toy patch for the CLI"))
    runner = CliRunner()
    result = runner.invoke(patches_group, ["disable", "toy", "--redis-url", redis_url])
    assert result.exit_code == 0, result.output
    listing = runner.invoke(patches_group, ["list", "--redis-url", redis_url])
    assert listing.exit_code == 0, listing.output
    header, row, _, stack = listing.output.splitlines()
    assert header.split()[:5] == ["PATCH", "KIND", "ENABLED", "ROLLOUT", "HEALTH"]
    assert "BELOW-FAILED" in header
    assert row.split()[:6] == ["toy", "llm", "off", "(switch)", "100%", "ok"]
    assert "a toy patch for the CLI" in row
    assert stack == "stack llm: toy → ToyLLM"
    result = runner.invoke(patches_group, ["rollout", "toy", "150", "--redis-url", redis_url])
    assert result.exit_code != 0 and "between 0 and 100" in result.output
    result = runner.invoke(patches_group, ["enable", "missing", "--redis-url", redis_url])
    assert result.exit_code != 0 and "no patch named 'missing'" in result.output
