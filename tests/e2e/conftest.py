"""End-to-end fixtures: an LLM simulator process, and clusters of real gateway + worker processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.e2e.harness import Cluster


class SimulatorProcess:
    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workers.llm.simulator", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("READY"):
            self.process.kill()
            raise RuntimeError(f"the LLM simulator did not start: {line!r}")
        self.root = f"http://127.0.0.1:{int(line.split()[1])}"
        self.base_url = self.root + "/v1"

    def stats(self) -> dict[str, Any]:
        return httpx.get(self.root + "/_stats", timeout=5).json()

    def configure(self, **changes: Any) -> None:
        httpx.post(self.root + "/_control", json=changes, timeout=5).raise_for_status()

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


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
