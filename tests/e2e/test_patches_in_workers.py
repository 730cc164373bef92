"""Patches in real worker processes: a slow model under a budgeted patch, and patches installed as plugins.

The plugins are real entry points: the example package ``examples/patchbay-redact-pii`` (installed by
``make install``), and a distribution written into a temporary directory on the workers'
``PYTHONPATH`` (a ``*.dist-info`` with an ``entry_points.txt`` is all ``importlib.metadata`` needs)
holding one working handler patch and two broken entry points.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import redis

from adapters.sim.llm import SimulatorProcess
from patches import control
from tests.e2e.harness import wait_until

pytestmark = pytest.mark.e2e

JOY_LINE = "The user seems in a good mood: be warm and upbeat."


def _patchbay(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "patches", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


@pytest.fixture
def slow_llm() -> Iterator[SimulatorProcess]:
    simulator = SimulatorProcess("--latency-ms", "1000")
    try:
        yield simulator
    finally:
        simulator.stop()


def test_emotion_tone_reaches_a_slow_model_once_per_message(make_cluster: Any, slow_llm: SimulatorProcess) -> None:
    env = {
        "PATCHBAY_LLM_MODEL": "openai/sim-model",
        "PATCHBAY_LLM_API_BASE": slow_llm.base_url,
        "OPENAI_API_KEY": "sk-test",
        "ENABLE_EMOTION_TONE": "true",  # its budget is 0.5 s; the model takes 1 s: only its own read counts
    }
    cluster = make_cluster(env).start(workers=1)
    messages = ["Thank you so much, this is wonderful!", "I am so happy today, everything is wonderful!"]
    for text in messages:
        response = cluster.chat("joyful", text)
        assert response.status_code == 200, response.text
    stats = slow_llm.stats()
    assert stats["chat_requests"] == len(messages)  # once per message: no timeout, no second generation
    for prompt, text in zip(stats["recent_prompts"][-len(messages) :], messages, strict=True):
        systems = [m["content"] for m in prompt if m["role"] == "system"]
        assert JOY_LINE in systems, prompt  # the tone line reached the model's prompt
        assert prompt[-1] == {"role": "user", "content": text}
    [tone] = [
        s for s in control.list_patches(redis.Redis.from_url(cluster.env["REDIS_URL"])) if s.name == "emotion_tone"
    ]
    assert (tone.enabled, tone.errors, tone.fallbacks, tone.health) == (True, 0, 0, "ok")


PLUGIN = '''
"""A handler patch that says, in the reply, which text the handler below it received."""
from patches import PatchConfig, PatchSpec
from workers.components import Handler


class EchoConfig(PatchConfig, patch="echo_handled", default_enabled=True):
    pass


class EchoHandled:
    def __init__(self, below, config):
        self.below = below

    async def handle(self, envelope):
        reply = await self.below.handle(envelope)
        return reply.model_copy(update={"text": f"{reply.text} (handled: {envelope.text})"})


SPEC = PatchSpec(
    name="echo_handled", kind="handler", interface=Handler, config_cls=EchoConfig,
    factory=lambda below, config, deps: EchoHandled(below, config), enhances=("handle",),
    below=("redact_pii",),  # it must see what redact_pii lets through
    description="echoes the text the handler got",
)
NOT_A_SPEC = "just a string"
'''


@pytest.fixture
def plugins(tmp_path: Path) -> Path:
    """A distribution on disk: one working patch, one that cannot import, one that is not a spec."""
    root = tmp_path / "plugins"
    info = root / "patchbay_test_plugins-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: patchbay-test-plugins\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [patchbay.patches]
            echo_handled = plugin_echo:SPEC
            broken_import = no_such_module_anywhere:SPEC
            not_a_spec = plugin_echo:NOT_A_SPEC
            """
        )
    )
    (root / "plugin_echo.py").write_text(PLUGIN)
    return root


def test_plugins_are_discovered_ordered_applied_listed_and_switched_like_built_ins(
    make_cluster: Any, sim_env: dict[str, str], llm_sim: SimulatorProcess, plugins: Path
) -> None:
    assert "redact_pii" in {point.name for point in entry_points(group="patchbay.patches")}, (
        "the example package is not installed: run `make install` (pip install -e examples/patchbay-redact-pii)"
    )
    env = {**sim_env, "PYTHONPATH": os.pathsep.join(filter(None, [str(plugins), os.environ.get("PYTHONPATH")]))}
    cluster = make_cluster(env).start(workers=1)  # the broken entry points do not stop the worker
    client = redis.Redis.from_url(cluster.env["REDIS_URL"])

    # Discovered and ordered: redact_pii (the example package) above echo_handled (this test's plugin).
    assert control.list_stacks(client)["handler"] == ["redact_pii", "echo_handled", "ChatHandler"]
    statuses = {s.name: s for s in control.list_patches(client)}
    assert (statuses["redact_pii"].kind, statuses["redact_pii"].enabled, statuses["redact_pii"].position) == (
        "handler",
        False,
        2,
    )
    assert statuses["echo_handled"].position == 1
    assert statuses["broken_import"].broken and "No module named 'no_such_module_anywhere'" in (
        statuses["broken_import"].refusal_reason
    )
    assert statuses["not_a_spec"].broken and "is a str, not a PatchSpec" in statuses["not_a_spec"].refusal_reason

    listing = _patchbay(cluster.env, "list")
    assert "redact_pii" in listing and "stack handler: redact_pii → echo_handled → ChatHandler" in listing
    assert "BROKEN: cannot load no_such_module_anywhere:SPEC" in listing

    # Off by its config: the address reaches the handler, the memory and the model.
    reply = cluster.chat("fay", "my email is fay@example.com").json()["text"]
    assert reply.endswith("(handled: my email is fay@example.com)")
    assert "fay@example.com" in str(llm_sim.stats()["recent_prompts"][-1])

    # Switched on at runtime, like a built-in: every worker follows within 2 s.
    _patchbay(cluster.env, "enable", "redact_pii")
    time.sleep(2.0)
    reply = cluster.chat("fay", "mail me at fay@example.com or +44 20 7946 0958").json()["text"]
    assert reply.endswith("(handled: mail me at [email removed] or [phone number removed])")
    last_prompt = str(llm_sim.stats()["recent_prompts"][-1])
    assert "mail me at [email removed]" in last_prompt and "+44 20 7946 0958" not in last_prompt

    _patchbay(cluster.env, "disable", "redact_pii")
    time.sleep(2.0)
    reply = cluster.chat("fay", "write to fay@example.com").json()["text"]
    assert reply.endswith("(handled: write to fay@example.com)")

    def counted() -> bool:  # the workers flush their counters every second
        status = {s.name: s for s in control.list_patches(client)}["redact_pii"]
        return status.calls == 3 and status.skipped == 2 and status.errors == 0

    wait_until(counted, timeout_s=10, what="redact_pii's counters in Redis")
