"""Operations shared by the CLI and the admin API, the stats flusher, and the cluster collector."""

from __future__ import annotations

import json
from typing import Any

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
    publish_registry,
    rollout,
)
from patches.health import HealthMonitor
from patches.metrics import HEALTH_KEY, ProcessStats, RedisPatchStatsCollector, StatsFlusher
from patches.registry import PatchRegistry
from patches.switches import SwitchBoard
from tests.unit.test_patch_toys import Behaviour, ToyConfig, ToyLLM, llm_spec, request
from workers.components import ComponentKind


def hget_text(client: redis.Redis, key: str, field: str) -> str:
    value = client.hget(key, field)
    assert isinstance(value, bytes), f"{key} has no field {field}"
    return value.decode()


def status_of(client: redis.Redis, registry: PatchRegistry, name: str) -> PatchStatus:
    [status] = [s for s in list_patches(client, registry) if s.name == name]
    return status


def test_list_shows_state_after_enable_disable_and_rollout(redis_client: redis.Redis) -> None:
    registry = PatchRegistry()
    registry.register(llm_spec("toy"))
    status = status_of(redis_client, registry, "toy")
    assert (status.kind, status.enabled, status.enabled_by, status.rollout_percent) == ("llm", False, "config", 100.0)
    assert (status.health, status.calls, status.source) == ("ok", 0, "local")

    enable(redis_client, "toy", registry=registry)
    assert (status_of(redis_client, registry, "toy").enabled, status_of(redis_client, registry, "toy").enabled_by) == (
        True,
        "switch",
    )
    rollout(redis_client, "toy", 25, registry=registry)
    assert status_of(redis_client, registry, "toy").rollout_percent == 25.0
    disable(redis_client, "toy", registry=registry)
    assert status_of(redis_client, registry, "toy").enabled is False

    with pytest.raises(UnknownPatchError, match="no patch named 'nope'; known patches: toy"):
        disable(redis_client, "nope", registry=registry)
    with pytest.raises(ValueError, match="between 0 and 100"):
        rollout(redis_client, "toy", -1, registry=registry)


async def test_workers_publish_their_patches_counts_and_health(redis_url: str, redis_client: redis.Redis) -> None:
    worker = PatchRegistry()  # what a worker process registered and applied
    worker.register(llm_spec("toy", Behaviour(mode="raise")))
    worker.register(llm_spec("refused", prerequisite=lambda config, deps: "no API key"))
    stats, health = ProcessStats(), HealthMonitor()
    runtime: dict[str, Any] = {"switches": SwitchBoard(), "health": health, "stats": stats}
    configs = {"toy": ToyConfig(enabled=True, health_min_calls=3), "refused": ToyConfig(enabled=True)}
    stack = worker.build_stack({ComponentKind.LLM: ToyLLM()}, configs=configs, **runtime)
    with call_context(user_id="u1"):
        for _ in range(4):
            await stack[ComponentKind.LLM].complete(request())  # three fallbacks, then auto-disabled
    publish_registry(redis_client, worker)
    flusher = StatsFlusher(redis_url, stats=stats, health=health)
    assert flusher.flush_once(redis_client)
    assert flusher.flush_once(redis_client)  # nothing new: writes nothing, adds nothing

    gateway = PatchRegistry()  # the CLI's process registered nothing itself
    [refused, toy] = list_patches(redis_client, gateway)
    assert (refused.name, refused.refused, refused.refusal_reason) == (
        "refused",
        True,
        "prerequisite not met: no API key",
    )
    assert (toy.source, toy.enabled, toy.calls, toy.errors, toy.fallbacks, toy.skipped) == ("workers", True, 4, 3, 3, 1)
    assert toy.fallback_rate == 1.0
    assert toy.health == "auto-disabled"
    assert json.loads(hget_text(redis_client, HEALTH_KEY, "toy"))["state"] == "auto-disabled"
    assert json.loads(hget_text(redis_client, REGISTERED_KEY, "toy"))["kind"] == "llm"

    registry = CollectorRegistry()
    registry.register(RedisPatchStatsCollector(redis_url))
    assert registry.get_sample_value("patchbay_patches_cluster_calls_total", {"patch": "toy"}) == 4
    assert registry.get_sample_value("patchbay_patches_cluster_fallbacks_total", {"patch": "toy"}) == 3
    assert registry.get_sample_value("patchbay_patches_cluster_health", {"patch": "toy", "state": "auto-disabled"}) == 1


def test_the_flusher_keeps_counts_while_redis_is_away(redis_url: str, redis_client: redis.Redis) -> None:
    stats = ProcessStats()
    stats.for_patch("toy").calls_by_method["complete"] = 5
    flusher = StatsFlusher("unix:///nonexistent/redis.sock", stats=stats, health=HealthMonitor())
    unreachable = redis.Redis(unix_socket_path="/nonexistent/redis.sock")
    assert flusher.flush_once(unreachable) is False
    assert flusher.failed_flushes == 1
    stats.for_patch("toy").calls_by_method["complete"] += 2
    assert flusher.flush_once(redis_client) is True
    assert int(hget_text(redis_client, "patchbay:patches:stats:toy", "calls")) == 7


def test_cli_lists_and_switches(redis_url: str, redis_client: redis.Redis) -> None:
    worker = PatchRegistry()
    worker.register(llm_spec("toy", description="a toy patch for the CLI"))
    publish_registry(redis_client, worker)
    runner = CliRunner()
    result = runner.invoke(patches_group, ["disable", "toy", "--redis-url", redis_url])
    assert result.exit_code == 0, result.output
    listing = runner.invoke(patches_group, ["list", "--redis-url", redis_url])
    assert listing.exit_code == 0, listing.output
    header, row = listing.output.splitlines()
    assert header.split()[:5] == ["PATCH", "KIND", "ENABLED", "ROLLOUT", "HEALTH"]
    assert row.split()[:6] == ["toy", "llm", "off", "(switch)", "100%", "ok"]
    assert "a toy patch for the CLI" in row
    result = runner.invoke(patches_group, ["rollout", "toy", "150", "--redis-url", redis_url])
    assert result.exit_code != 0 and "between 0 and 100" in result.output
    result = runner.invoke(patches_group, ["enable", "missing", "--redis-url", redis_url])
    assert result.exit_code != 0 and "no patch named 'missing'" in result.output
