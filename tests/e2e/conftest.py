"""End-to-end fixtures: an LLM simulator process, and clusters of real gateway + worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from adapters.sim.llm import SimulatorProcess
from tests.e2e.harness import Cluster


@pytest.fixture
def llm_sim() -> Iterator[SimulatorProcess]:
    simulator = SimulatorProcess()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def sim_env(llm_sim: SimulatorProcess) -> dict[str, str]:
    """Environment that points the base LLM at the simulator (deterministic, instant)."""
    return {
        "PATCHBAY_LLM_MODEL": "openai/sim-model",
        "PATCHBAY_LLM_API_BASE": llm_sim.base_url,
        "OPENAI_API_KEY": "sk-test",
    }


@pytest.fixture
def make_cluster(redis_client: redis.Redis, redis_url: str, tmp_path: Path) -> Iterator[Any]:
    clusters: list[Cluster] = []

    def make(env: dict[str, str] | None = None) -> Cluster:
        cluster = Cluster(redis_url, tmp_path / f"data{len(clusters)}", env)
        clusters.append(cluster)
        return cluster

    try:
        yield make
    finally:
        for cluster in clusters:
            cluster.stop()
