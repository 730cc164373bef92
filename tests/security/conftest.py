"""The end-to-end fixtures (LLM simulator, clusters of real processes) are shared with tests/e2e."""

from tests.e2e.conftest import llm_sim, make_cluster, sim_env

__all__ = ["llm_sim", "make_cluster", "sim_env"]
