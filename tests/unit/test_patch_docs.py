"""docs/patches.md stays true: its example patch, packaging and test run as written."""

from __future__ import annotations

import importlib
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from patches.registry import PatchRegistry
from patches.spec import PatchSpec

DOC = Path(__file__).resolve().parents[2] / "docs" / "patches.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.fixture
def brief_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    module_source = next(block for block in blocks("python") if block.startswith("# patchbay_brief.py"))
    (tmp_path / "patchbay_brief.py").write_text(module_source)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("patchbay_brief", None)
    yield importlib.import_module("patchbay_brief")
    sys.modules.pop("patchbay_brief", None)


async def test_the_documented_patch_module_and_its_test_work(brief_module: Any) -> None:
    spec = brief_module.SPEC
    assert isinstance(spec, PatchSpec) and spec.name == "brief_answers" and spec.kind == "llm"
    test_source = next(block for block in blocks("python") if "async def test_brief_answers_adds_the_line" in block)
    namespace: dict[str, Any] = {}
    exec(compile(test_source, "docs/patches.md", "exec"), namespace)
    await namespace["test_brief_answers_adds_the_line"]()


def test_the_documented_entry_point_names_the_module_spec(brief_module: Any) -> None:
    pyproject = tomllib.loads(next(block for block in blocks("toml") if "patchbay.patches" in block))
    [(name, value)] = pyproject["project"]["entry-points"]["patchbay.patches"].items()
    module, attribute = value.split(":")
    assert (name, module, getattr(importlib.import_module(module), attribute)) == (
        "brief_answers",
        "patchbay_brief",
        brief_module.SPEC,
    )


def test_the_documented_patch_sits_above_llm_resilience(brief_module: Any) -> None:
    from patches.llm_resilience import SPEC as RESILIENCE

    registry = PatchRegistry([RESILIENCE, brief_module.SPEC])
    assert [spec.name for spec in registry.ordered("llm")] == ["llm_resilience", "brief_answers"]
