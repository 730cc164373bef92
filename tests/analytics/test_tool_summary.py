"""Tool calls recorded in reply events appear in the summary per tool: calls, failures, latency."""

from __future__ import annotations

from typing import Any

from gateway.analytics import AnalyticsWriter, EventSink, summary
from gateway.analytics.cli import render

from .dataset import T0


def _reply(number: int, tools: dict[str, Any] | None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "kind": "reply",
        "event_id": f"tool-evt-{number}",
        "key": f"k{number}",
        "platform": "webchat",
        "user_id": "someone",
        "ts_egress": T0 + number,
    }
    if tools is not None:
        event["tools"] = tools
    return event


def _call(tool: str, ms: float, outcome: str = "ok") -> dict[str, Any]:
    return {"tool": tool, "server": "example", "duration_ms": ms, "outcome": outcome, "result_chars": 10}


async def test_the_summary_counts_calls_failures_and_latency_per_tool(sink: EventSink, writer: AnalyticsWriter) -> None:
    records = [
        {"calls": [_call("example.checksum", 10.0), _call("example.fail", 5.0, "error")], "unavailable": {}},
        {"calls": [_call("example.checksum", 30.0)], "unavailable": {}, "stopped": "max_steps"},
        {"calls": [_call("example.sleep", 1000.0, "timeout")], "unavailable": {}, "stopped": "timeout"},
        {"calls": [], "unavailable": {"web": "connect_failed: ConnectError"}},
        None,  # a reply without tools
    ]
    for number, record in enumerate(records):
        assert await sink.emit(_reply(number, record))
    await writer.flush()

    tools = (await summary(await writer.engine(), T0 - 10, T0 + 100))["tools"]

    checksum = tools["by_tool"]["example.checksum"]
    assert (checksum["calls"], checksum["failures"], checksum["latency_ms"]["p50"]) == (2, 0, 20.0)
    assert tools["by_tool"]["example.fail"]["failures"] == 1
    assert tools["by_tool"]["example.sleep"]["outcomes"] == {"timeout": 1}
    assert tools["unavailable"] == {"web": 1}
    assert tools["stopped_by_limit"] == {"max_steps": 1, "timeout": 1}
    assert tools["replies_with_calls"] == 3

    text = render(await summary(await writer.engine(), T0 - 10, T0 + 100))
    assert "tool example.checksum" in text and "2 calls  0 failed" in text
    assert "tool server web" in text
