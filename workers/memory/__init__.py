"""The memory component: conversation history and scoped long-term recall (base), and its enhancement layers."""

from __future__ import annotations

from workers.memory.store import SqlMemory

__all__ = ["SqlMemory", "build_base_memory"]


def build_base_memory(database_url: str) -> SqlMemory:
    """The base memory on ``database_url`` (an async SQLAlchemy URL); call ``await memory.init()`` before use."""
    return SqlMemory(database_url)
