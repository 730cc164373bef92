"""The chaos suite's marker: ``-m chaos`` runs it alone, ``-m "not chaos"`` leaves it out."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: fault tests on a real cluster (worker kills, Redis restarts)")
