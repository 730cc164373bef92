"""Tool calling end to end (issue 13): a real worker, the scripted LLM simulator, the example MCP server.

The simulator asks for tool calls by name; the worker runs them on the MCP server (a real
subprocess over stdio, or over streamable HTTP), feeds the results back, and the user gets one reply
built on them. The analytics event of the reply records every call.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.sim.llm import SimulatorProcess
from tests.e2e.harness import Cluster, free_port, wait_until

pytestmark = pytest.mark.e2e

SERVER = Path(__file__).resolve().parents[1] / "tools" / "mcp_example_server.py"
CHECKSUM = "checksum of 'patchbay' is e22db1b9"  # the example server's checksum tool, by construction


def _env(sim_env: dict[str, str], servers: list[dict[str, Any]], **extra: str) -> dict[str, str]:
    return {
        **sim_env,
        "PATCHBAY_TOOLS_MCP": json.dumps(servers),
        "PATCHBAY_TOOLS_MODELS": "openai/sim-model",  # the simulator calls tools; litellm does not know it
        "PATCHBAY_LLM_CACHE": "false",
        **extra,
    }


def _tool_records(cluster: Cluster) -> list[dict[str, Any]]:
    database = cluster.data_dir / "patchbay.db"
    if not database.exists():
        return []
    with sqlite3.connect(database) as db:  # the gateway's analytics writer fills it off the reply path
        try:
            rows = db.execute("SELECT extra FROM analytics_events WHERE kind = 'reply' ORDER BY ts").fetchall()
        except sqlite3.OperationalError:
            return []
    return [json.loads(extra or "{}").get("tools") or {} for (extra,) in rows]


def _requests_since(sim: SimulatorProcess, before: int) -> list[dict[str, Any]]:
    stats = sim.stats()
    fresh = stats["chat_requests"] - before
    return stats["recent_requests"][-fresh:] if fresh else []


def _ask(cluster: Cluster, sim: SimulatorProcess, user: str, text: str) -> tuple[str, list[dict[str, Any]]]:
    before = sim.stats()["chat_requests"]
    response = cluster.chat(user, text)
    assert response.status_code == 200, response.text
    return response.json()["text"], _requests_since(sim, before)


def test_a_scripted_model_calls_an_mcp_tool_over_stdio_with_limits_errors_and_the_switch(
    make_cluster, sim_env, llm_sim, redis_url
):
    stdio = {"name": "example", "command": [sys.executable, str(SERVER)]}
    env = _env(
        sim_env,
        [stdio],
        # Everything but "add" in direct messages (the web chat is one): "add" must never be offered.
        PATCHBAY_TOOLS_DIRECT_MESSAGES="example.checksum,example.sleep,example.fail",
        PATCHBAY_TOOLS_MAX_STEPS="3",
        PATCHBAY_TOOLS_CALL_TIMEOUT="1",
        PATCHBAY_TOOLS_TOTAL_TIMEOUT="1.5",
    )
    llm_sim.configure(
        tool_script=[{"tool": "example__checksum", "arguments": {"text": "patchbay"}, "when": "checksum"}]
    )
    cluster = make_cluster(env).start(workers=1)

    # 1. The model asks for the tool, the worker calls the MCP server, the reply carries its answer.
    text, requests = _ask(cluster, llm_sim, "tia", "what is the checksum of patchbay?")
    assert CHECKSUM in text
    assert len(requests) == 2  # the request with tools, then the one with the tool's result
    assert "example__checksum" in requests[0]["tools"] and "example__add" not in requests[0]["tools"]
    assert requests[1]["messages"][-1]["role"] == "tool" and CHECKSUM in requests[1]["messages"][-1]["content"]
    record = wait_until(lambda: _tool_records(cluster) and _tool_records(cluster)[-1], what="the reply event")
    assert record["calls"][0]["tool"] == "example.checksum" and record["calls"][0]["server"] == "example"
    assert record["calls"][0]["outcome"] == "ok" and record["calls"][0]["result_chars"] == len(CHECKSUM)

    # 2. A model that keeps asking: the loop stops at max_steps and still answers, without tools.
    llm_sim.configure(tool_script=[{"tool": "example__checksum", "arguments": {"text": "patchbay"}, "repeat": True}])
    text, requests = _ask(cluster, llm_sim, "tia", "loop forever")
    assert text.strip() and len(requests) == 4  # three rounds of tool calls, then the answer
    assert requests[-1]["tools"] == [] and all(r["tools"] for r in requests[:-1])
    assert wait_until(lambda: len(_tool_records(cluster)) == 2, what="the event") and (
        _tool_records(cluster)[-1]["stopped"] == "max_steps"
    )

    # 3. A tool that hangs: reported to the model as an error after the call timeout; the time limit ends the loop.
    llm_sim.configure(tool_script=[{"tool": "example__sleep", "arguments": {"seconds": 30}, "repeat": True}])
    started = time.monotonic()
    text, requests = _ask(cluster, llm_sim, "tia", "sleep on it")
    assert time.monotonic() - started < 10
    assert text.strip() and requests[-1]["tools"] == []
    assert any("did not answer within" in str(m.get("content")) for m in requests[-1]["messages"])
    record = wait_until(lambda: len(_tool_records(cluster)) == 3 and _tool_records(cluster)[-1], what="the event")
    assert record["stopped"] == "timeout" and {c["outcome"] for c in record["calls"]} == {"timeout"}

    # 4. A tool that raises: the model hears the error, the user gets one answer.
    llm_sim.configure(tool_script=[{"tool": "example__fail", "arguments": {"message": "boom"}}])
    text, requests = _ask(cluster, llm_sim, "tia", "break it")
    assert "example__fail said error:" in text and "boom" in text
    record = wait_until(lambda: len(_tool_records(cluster)) == 4 and _tool_records(cluster)[-1], what="the event")
    assert record["calls"][0]["outcome"] == "error"

    # Every message got exactly one reply event; "add" was never offered in any request.
    assert len(_tool_records(cluster)) == 4
    assert all("example__add" not in r["tools"] for r in llm_sim.stats()["recent_requests"])

    # 5. The patch switched off at runtime: within 2 s, answers come without tools.
    llm_sim.configure(
        tool_script=[{"tool": "example__checksum", "arguments": {"text": "patchbay"}, "when": "checksum"}]
    )
    subprocess.run(
        [sys.executable, "-m", "gateway.cli", "patches", "disable", "tools"],
        env={**os.environ, "REDIS_URL": redis_url},
        check=True,
        capture_output=True,
        timeout=60,
    )
    time.sleep(2.0)
    text, requests = _ask(cluster, llm_sim, "tia", "checksum again please")
    assert CHECKSUM not in text and len(requests) == 1 and requests[0]["tools"] == []


def _http_server(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(SERVER), "--http", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _unavailable_count(metrics_port: int) -> float:
    metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("patchbay_tools_server_unavailable_total{") and 'server="example"' in line
    )


def _listening(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
    except httpx.HTTPError:
        return False
    return True


def test_an_http_mcp_server_that_is_down_is_not_offered_and_comes_back_without_a_restart(
    make_cluster, sim_env, llm_sim
):
    port, metrics_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    env = _env(
        sim_env,
        [{"name": "example", "url": url}],
        PATCHBAY_TOOLS_RETRY_AFTER="0.5",
        PATCHBAY_WORKER_METRICS_PORT=str(metrics_port),
    )
    llm_sim.configure(tool_script=[{"tool": "example__checksum", "arguments": {"text": "patchbay"}}])
    cluster = make_cluster(env).start(workers=1)

    # Down: nothing listens there. The reply still comes, plain, and the event says why there were no tools.
    text, requests = _ask(cluster, llm_sim, "uma", "the checksum of patchbay?")
    assert text.startswith("sim reply") and requests[0]["tools"] == []
    record = wait_until(lambda: _tool_records(cluster) and _tool_records(cluster)[-1], what="the reply event")
    assert "example" in record["unavailable"] and "connect_failed" in record["unavailable"]["example"]
    assert _unavailable_count(metrics_port) >= 1  # counted on the worker's /metrics

    server = _http_server(port)
    sent = 1
    try:
        wait_until(lambda: _listening(f"http://127.0.0.1:{port}/"), timeout_s=30, what="the MCP server")

        # Up again, same worker, no restart: a message past retry_after_s reconnects in the background
        # (no message waits for a server known to be down), and the next ones get its tools.
        def answered_with_the_tool() -> bool:
            nonlocal sent
            text, requests = _ask(cluster, llm_sim, "uma", "and now the checksum of patchbay?")
            sent += 1
            return CHECKSUM in text and "example__checksum" in requests[0]["tools"]

        wait_until(answered_with_the_tool, timeout_s=30, interval_s=0.6, what="the tool to come back")

        # Down again: the session breaks, the next messages get plain answers, no failed reply.
        server.kill()
        server.wait(timeout=10)
        for attempt in range(2):
            text, _ = _ask(cluster, llm_sim, "uma", f"checksum once more ({attempt})")
            sent += 1
            assert text.strip()
    finally:
        server.kill()
        server.wait(timeout=10)
    records = wait_until(lambda: len(_tool_records(cluster)) == sent and _tool_records(cluster), what="every event")
    assert "example" in records[-1]["unavailable"]


def test_built_in_tools_read_the_clock_search_and_forget_only_the_users_own_memories(make_cluster, sim_env, llm_sim):
    env = _env(sim_env, [], PATCHBAY_TOOLS_BUILTINS="current_time,search_memory,forget_memory")
    llm_sim.configure(
        tool_script=[
            {"tool": "current_time", "when": "what time"},
            {"tool": "search_memory", "arguments": {"query": "cat"}, "when": "remind me"},
            {"tool": "forget_memory", "arguments": {"about": "cat"}, "when": "forget"},
        ]
    )
    cluster = make_cluster(env).start(workers=1)

    response = cluster.chat("wren", "what time is it?", timezone="Asia/Tokyo")
    assert response.status_code == 200 and "current_time said" in response.json()["text"]
    assert "time zone Asia/Tokyo" in response.json()["text"]

    assert cluster.chat("wren", "my cat is called Miso").status_code == 200
    assert cluster.chat("yara", "my cat is called Rex").status_code == 200
    text, _ = _ask(cluster, llm_sim, "wren", "remind me about my pet")
    assert "search_memory said" in text and "Miso" in text and "Rex" not in text  # only wren's own words

    text, _ = _ask(cluster, llm_sim, "wren", "please forget what I told you about my cat")
    assert "forget_memory said Deleted" in text and "Miso" in text  # the reply confirms what was forgotten
    text, _ = _ask(cluster, llm_sim, "wren", "remind me about my pet")
    assert "search_memory said" in text and "Miso" not in text
    text, _ = _ask(cluster, llm_sim, "yara", "remind me about my pet")
    assert "Rex" in text  # another user's memories are untouched
