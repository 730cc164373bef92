"""What happened to one message inside the worker, for logs and the analytics ``reply`` event.

The stack's components fill it in as they go (through a context variable, so no interface has to
carry it); the task reads it once the reply went out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MessageReport", "current_report", "message_report"]


@dataclass(slots=True)
class MessageReport:
    key: str
    ts_worker_start: float = field(default_factory=time.time)
    ts_llm_start: float | None = None
    ts_llm_done: float | None = None
    ts_egress: float | None = None
    llm_provider: str = ""
    llm_model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cache_hit: bool = False
    voice: bool = False
    degraded: str | None = None
    error: str | None = None
    reply_ids: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)  # per image: type, sizes, outcome (never bytes)
    tools: dict[str, Any] | None = None  # what tool calling did (workers.tools.base.ToolsReport), when tools were asked
    extra: dict[str, Any] = field(default_factory=dict)


_report: ContextVar[MessageReport | None] = ContextVar("patchbay_message_report", default=None)


@contextmanager
def message_report(key: str) -> Iterator[MessageReport]:
    report = MessageReport(key=key)
    token = _report.set(report)
    try:
        yield report
    finally:
        _report.reset(token)


def current_report() -> MessageReport | None:
    return _report.get()
