"""Streaming fixtures: the e2e ones, and an LLM simulator streaming at about 20 tokens a second."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.sim.llm import SimulatorProcess
from tests.e2e.conftest import make_cluster  # noqa: F401  (a fixture)

TOKEN_DELAY_MS = 50  # 20 tokens/s, a small remote model's pace
REPLY_CHARS = 300  # about 55 tokens: three seconds of streaming


@pytest.fixture
def slow_llm() -> Iterator[SimulatorProcess]:
    simulator = SimulatorProcess("--token-delay-ms", str(TOKEN_DELAY_MS), "--reply-chars", str(REPLY_CHARS))
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def slow_env(slow_llm: SimulatorProcess) -> dict[str, str]:
    return {
        "PATCHBAY_LLM_MODEL": "openai/sim-model",
        "PATCHBAY_LLM_API_BASE": slow_llm.base_url,
        "OPENAI_API_KEY": "sk-test",
        "PATCHBAY_EMBEDDING_MODEL": "hash",
    }
