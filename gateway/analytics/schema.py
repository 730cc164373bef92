"""The one wide events table: a row per message, reply or reaction, typed columns per field.

One table (rather than one per kind) keeps a single export schema and lets the summary join a
reply to its message and to its reactions by ``key`` with plain SQL.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = ["EXPORT_COLUMNS", "JSON_COLUMNS", "PSEUDONYMISED", "events", "metadata", "reply_ids"]

metadata = MetaData()

events = Table(
    "analytics_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", String(40), nullable=False, unique=True),  # makes a replayed batch harmless
    Column("kind", String(16), nullable=False),
    Column("ts", Float, nullable=False),
    Column("key", String(64)),
    Column("platform", String(32)),
    Column("bot_id", String(128)),
    Column("conversation_id", String(64)),
    Column("user_id", String(64)),
    Column("decision", String(32)),
    Column("reason", Text),
    Column("ts_ingress", Float),
    Column("ts_enqueue", Float),
    Column("text_chars", Integer),
    Column("attachments", Integer),
    Column("is_direct", Boolean),
    Column("reply_ids", Text),
    Column("ts_worker_start", Float),
    Column("ts_llm_start", Float),
    Column("ts_llm_done", Float),
    Column("ts_egress", Float),
    Column("llm_provider", String(64)),
    Column("llm_model", String(128)),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("cost_usd", Float),
    Column("cache_hit", Boolean),
    Column("patches", Text),
    Column("variants", Text),
    Column("voice", Boolean),
    Column("degraded", Text),
    Column("error", Text),
    Column("reply_id", String(64)),
    Column("value", Integer),
    Column("extra", Text),
    Index("ix_analytics_events_ts", "ts"),
    Index("ix_analytics_events_kind_ts", "kind", "ts"),
    Index("ix_analytics_events_key", "key"),
)

# A reaction names the platform message it rates; this maps that id back to the message's key.
reply_ids = Table(
    "analytics_reply_ids",
    metadata,
    Column("reply_id", String(64), primary_key=True),
    Column("key", String(64), nullable=False),
)

PSEUDONYMISED = ("key", "conversation_id", "user_id", "reply_id")
JSON_COLUMNS = ("reply_ids", "patches", "variants", "extra")
EXPORT_COLUMNS: tuple[str, ...] = tuple(c.name for c in events.columns if c.name != "id")
