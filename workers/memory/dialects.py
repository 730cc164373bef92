"""The SQL each backend speaks: SQLite (FTS5 BM25) and PostgreSQL (tsvector + GIN). Vectors are blobs in both.

Only table names vary at run time, and they are validated identifiers, so building these statements
from f-strings is safe; every value is a bound parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Dialect", "PostgresDialect", "SqliteDialect", "dialect_for", "fts_match_sqlite", "tsquery_postgres"]

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")
_COLUMNS = "id, conversation_key, role, text, author_id, author_name, platform, bot_id, user_id, scope, message_id, ts"


def fts_match_sqlite(terms: list[str], scope_tokens: list[str]) -> str:
    """An FTS5 query: one of the visible scope tokens AND any of the quoted terms.

    The scope token makes FTS5 intersect posting lists inside the index instead of ranking every
    match in the whole store and filtering afterwards (100x faster at 100k memories). Terms are
    quoted: a user's message never reaches FTS5 as syntax.
    """
    scopes = " OR ".join(scope_tokens)
    return f"scope_key : ({scopes}) AND (" + " OR ".join(f'"{t}"' for t in terms) + ")"


def tsquery_postgres(terms: list[str]) -> str:
    """A ``to_tsquery`` OR query; terms are ``[a-z0-9']`` words already, quotes stripped for safety."""
    return " | ".join(t.replace("'", "") for t in terms if t.replace("'", ""))


@dataclass(frozen=True, slots=True)
class Dialect:
    prefix: str

    @property
    def turns(self) -> str:
        return f"{self.prefix}_turns"

    @property
    def meta(self) -> str:
        """One row per one-time migration done (``user_ids``: user ids are qualified keys)."""
        return f"{self.prefix}_meta"

    @property
    def columns(self) -> str:
        return _COLUMNS

    def schema(self) -> list[str]:
        raise NotImplementedError

    def lexical_sql(self, scope_sql: str) -> str:
        """Rows ``(id, rank)``: in-scope turns matching ``:match``, best first, ``rank`` higher is better."""
        raise NotImplementedError

    def lexical_terms(self, terms: list[str], scope_tokens: list[str]) -> str:
        raise NotImplementedError

    def insert_sql(self) -> str:
        raise NotImplementedError


class SqliteDialect(Dialect):
    @property
    def fts(self) -> str:
        return f"{self.prefix}_fts"

    def schema(self) -> list[str]:
        t, f = self.turns, self.fts
        return [
            f"""CREATE TABLE IF NOT EXISTS {t} (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                conversation_key TEXT NOT NULL, role TEXT NOT NULL, text TEXT NOT NULL,
                author_id TEXT NOT NULL, author_name TEXT NOT NULL DEFAULT '', platform TEXT NOT NULL DEFAULT '',
                bot_id TEXT NOT NULL DEFAULT '', user_id TEXT NOT NULL DEFAULT '', scope TEXT NOT NULL,
                message_id TEXT NOT NULL DEFAULT '', ts REAL NOT NULL, embedding BLOB,
                scope_key TEXT NOT NULL DEFAULT '')""",
            f"CREATE INDEX IF NOT EXISTS {t}_conversation ON {t} (conversation_key, ts)",
            f"CREATE INDEX IF NOT EXISTS {t}_private ON {t} (user_id, bot_id, platform, scope, ts)",
            f"CREATE INDEX IF NOT EXISTS {t}_workspace ON {t} (bot_id, platform, scope, ts)",
            f"CREATE INDEX IF NOT EXISTS {t}_author ON {t} (author_id)",
            # The author's name is indexed with the text: "what did Alice say about..." names her.
            f"""CREATE VIRTUAL TABLE IF NOT EXISTS {f} USING fts5(
                scope_key, author_name, text, content='{t}', content_rowid='id', tokenize='porter unicode61')""",
            f"""CREATE TRIGGER IF NOT EXISTS {t}_fts_insert AFTER INSERT ON {t} BEGIN
                INSERT INTO {f}(rowid, scope_key, author_name, text)
                VALUES (new.id, new.scope_key, new.author_name, new.text); END""",
            f"""CREATE TRIGGER IF NOT EXISTS {t}_fts_delete AFTER DELETE ON {t} BEGIN
                INSERT INTO {f}({f}, rowid, scope_key, author_name, text)
                VALUES ('delete', old.id, old.scope_key, old.author_name, old.text); END""",
        ]

    def lexical_sql(self, scope_sql: str) -> str:
        # bm25() is lower-is-better; negate so every backend ranks "higher is better".
        # The scope token column weighs 0 in BM25: it filters, it must not rank.
        rank = f"bm25({self.fts}, 0.0, 1.0, 1.0)"
        return (
            f"SELECT m.id, -{rank} AS rank FROM {self.fts} JOIN {self.turns} m ON m.id = {self.fts}.rowid "
            f"WHERE {self.fts} MATCH :match AND ({scope_sql}) ORDER BY {rank} LIMIT :pool"
        )

    def lexical_terms(self, terms: list[str], scope_tokens: list[str]) -> str:
        return fts_match_sqlite(terms, scope_tokens)

    def insert_sql(self) -> str:
        return (
            f"INSERT INTO {self.turns} (conversation_key, role, text, author_id, author_name, platform, bot_id, "
            "user_id, scope, message_id, ts, scope_key) VALUES (:conversation_key, :role, :text, :author_id, "
            ":author_name, :platform, :bot_id, :user_id, :scope, :message_id, :ts, :scope_key) RETURNING id"
        )


class PostgresDialect(Dialect):
    def schema(self) -> list[str]:
        t = self.turns
        return [
            f"""CREATE TABLE IF NOT EXISTS {t} (
                id BIGSERIAL PRIMARY KEY,
                conversation_key TEXT NOT NULL, role TEXT NOT NULL, text TEXT NOT NULL,
                author_id TEXT NOT NULL, author_name TEXT NOT NULL DEFAULT '', platform TEXT NOT NULL DEFAULT '',
                bot_id TEXT NOT NULL DEFAULT '', user_id TEXT NOT NULL DEFAULT '', scope TEXT NOT NULL,
                message_id TEXT NOT NULL DEFAULT '', ts DOUBLE PRECISION NOT NULL, embedding BYTEA,
                scope_key TEXT NOT NULL DEFAULT '',
                tsv TSVECTOR GENERATED ALWAYS AS (to_tsvector('english', author_name || ' ' || text)) STORED)""",
            f"CREATE INDEX IF NOT EXISTS {t}_conversation ON {t} (conversation_key, ts)",
            f"CREATE INDEX IF NOT EXISTS {t}_private ON {t} (user_id, bot_id, platform, scope, ts)",
            f"CREATE INDEX IF NOT EXISTS {t}_workspace ON {t} (bot_id, platform, scope, ts)",
            f"CREATE INDEX IF NOT EXISTS {t}_author ON {t} (author_id)",
            f"CREATE INDEX IF NOT EXISTS {t}_tsv ON {t} USING GIN (tsv)",
        ]

    def lexical_sql(self, scope_sql: str) -> str:
        return (
            f"SELECT m.id, ts_rank_cd(m.tsv, q) AS rank FROM {self.turns} m, to_tsquery('english', :match) q "
            f"WHERE m.tsv @@ q AND ({scope_sql}) ORDER BY rank DESC LIMIT :pool"
        )

    def lexical_terms(self, terms: list[str], scope_tokens: list[str]) -> str:
        return tsquery_postgres(terms)  # PostgreSQL combines the GIN and B-tree indexes itself

    def insert_sql(self) -> str:
        return (
            f"INSERT INTO {self.turns} (conversation_key, role, text, author_id, author_name, platform, bot_id, "
            "user_id, scope, message_id, ts, scope_key) VALUES (:conversation_key, :role, :text, :author_id, "
            ":author_name, :platform, :bot_id, :user_id, :scope, :message_id, :ts, :scope_key) RETURNING id"
        )


def dialect_for(database_url: str, prefix: str) -> Dialect:
    if not _IDENTIFIER.match(prefix):
        raise ValueError(f"table prefix {prefix!r} must be a lower-case identifier of at most 41 characters")
    if database_url.startswith("sqlite"):
        return SqliteDialect(prefix)
    if database_url.startswith("postgresql"):
        return PostgresDialect(prefix)
    raise ValueError(
        f"unsupported memory database {database_url.split(':', 1)[0]!r}: use sqlite+aiosqlite or postgresql+psycopg"
    )
