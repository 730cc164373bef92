"""Prometheus metrics of tool calling (a worker's registry; analytics carry the per-message record)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["LOOP_STOPPED", "NOT_OFFERED", "SERVER_UNAVAILABLE", "TOOL_CALLS", "TOOL_SECONDS"]

TOOL_CALLS = Counter("patchbay_tool_calls_total", "tool calls by tool and outcome", ["tool", "outcome"])
TOOL_SECONDS = Histogram(
    "patchbay_tool_call_seconds", "time of one tool call", ["tool"], buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30)
)
SERVER_UNAVAILABLE = Counter(
    "patchbay_tools_server_unavailable_total",
    "times an MCP server could not be used (its tools were not offered or a call broke)",
    ["server", "reason"],
)  # reason: connect_failed | list_failed | call_failed
NOT_OFFERED = Counter(
    "patchbay_tools_not_offered_total", "messages answered without tools, by why", ["reason"]
)  # reason: model_without_tools | none_allowed | none_available
LOOP_STOPPED = Counter(
    "patchbay_tools_loop_stopped_total", "tool loops ended by a limit before the model answered", ["limit"]
)
