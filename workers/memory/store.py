"""``SqlMemory``: the base memory component — conversation history plus scoped long-term recall, in SQL.

One table of turns holds everything: the conversation's history is a slice of it by conversation key,
long-term recall ranks the turns the query's scope may see by BM25 (or ``ts_rank_cd``), vector
similarity and a recency decay. Vectors are computed off the reply path: ``remember`` writes the row
(and so the lexical index) at once and queues the text; a background task embeds queued turns in
batches and fills their vector. ``flush()`` waits for that queue.

Users are platform-qualified keys (``telegram:1001``, ``slack:<team>:U11``; ``gateway.shared.identity``).
Rows written before that kept bare ids; ``init`` rewrites them once (``_qualify_legacy_user_ids``),
since each row names its platform and bot: nothing is guessed, and private recall and forgetting
keep working for them. Text is stored without NUL and other control characters on both backends
(PostgreSQL refuses NUL in text), so the same turn reads back the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gateway.shared.hygiene import clean_display_name, clean_text
from gateway.shared.identity import PLATFORMS, split_user_key, user_key
from workers.components import Recalled, RecallQuery, Scope, Turn
from workers.memory.dialects import Dialect, SqliteDialect, dialect_for
from workers.memory.embedder import Embedder, build_embedder
from workers.memory.metrics import EMBEDDING_FAILURES, RECALL_SECONDS, REMEMBER_SECONDS
from workers.memory.settings import MemorySettings
from workers.memory.text import content_words

__all__ = ["SqlMemory", "embedding_text", "scope_filter"]

log = logging.getLogger(__name__)
_EMBED_BATCH = 64
_EMBED_LINGER_S = 0.05  # wait this long for more turns: one pass over 64 texts costs far less than 64 passes
_MAX_QUERY_TERMS = 32
_REUSABLE_VECTORS = 1024  # query vectors kept for the turn remembered right after (the same text, embedded once)
_DAY = 86400.0


def scope_filter(query: RecallQuery) -> tuple[list[str], dict[str, Any]]:
    """The SQL conditions (one per visible scope, OR-ed) naming the turns ``query`` may see, and their values.

    - channel memories: only in the very conversation they were said in;
    - workspace memories: in every conversation of the same bot (workspace/guild) on the same platform;
    - private memories: only when the query itself is private, and only that user's, with that bot.
    """
    branches = [
        "(m.scope = 'channel' AND m.conversation_key = :scope_conversation)",
        "(m.scope = 'workspace' AND m.bot_id = :scope_bot AND m.platform = :scope_platform)",
    ]
    if query.scope == Scope.PRIVATE:
        branches.append(
            "(m.scope = 'private' AND m.user_id = :scope_user AND m.bot_id = :scope_bot "
            "AND m.platform = :scope_platform)"
        )
    values = {
        "scope_conversation": query.conversation_key,
        "scope_bot": query.bot_id,
        "scope_platform": query.platform,
        "scope_user": query.user_id,
    }
    return branches, values


def scope_token(scope: Scope | str, *parts: str) -> str:
    """One opaque word naming a visibility group, indexed with each turn (see ``fts_match_sqlite``)."""
    digest = hashlib.blake2b("\x1f".join([str(scope), *parts]).encode(), digest_size=10).hexdigest()
    return f"s{digest}"


def turn_scope_token(turn: Turn) -> str:
    scope = Scope(turn.scope)
    if scope == Scope.PRIVATE:
        return scope_token(scope, turn.user_id, turn.bot_id, turn.platform)
    if scope == Scope.WORKSPACE:
        return scope_token(scope, turn.bot_id, turn.platform)
    return scope_token(scope, turn.conversation_key)


def query_scope_tokens(query: RecallQuery) -> list[str]:
    tokens = [
        scope_token(Scope.CHANNEL, query.conversation_key),
        scope_token(Scope.WORKSPACE, query.bot_id, query.platform),
    ]
    if query.scope == Scope.PRIVATE:
        tokens.append(scope_token(Scope.PRIVATE, query.user_id, query.bot_id, query.platform))
    return tokens


def embedding_text(turn: Turn) -> str:
    """What a turn's vector is computed from: who said it, then what was said."""
    return f"{turn.author_name}: {turn.text}" if turn.author_name else turn.text


def _unique_terms(message: str) -> list[str]:
    return list(dict.fromkeys(content_words(message)))[:_MAX_QUERY_TERMS]


class SqlMemory:
    """Implements ``workers.components.Memory`` on SQLite (FTS5) or PostgreSQL (tsvector)."""

    def __init__(
        self,
        database_url: str,
        *,
        embedder: Embedder | None = None,
        settings: MemorySettings | None = None,
        table_prefix: str = "memory",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings or MemorySettings()
        self.embedder = embedder or build_embedder(self.settings.embedding_model, self.settings.embedding_dim)
        self._dialect: Dialect = dialect_for(database_url, table_prefix)
        self._is_sqlite = isinstance(self._dialect, SqliteDialect)
        self._engine: AsyncEngine = create_async_engine(database_url, **self._engine_options())
        if self._is_sqlite:
            event.listen(self._engine.sync_engine, "connect", _sqlite_pragmas)
        # SQLite has one writer at a time: queue writers here instead of in busy-wait retries.
        self._write_lock = asyncio.Lock()
        self._pending: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
        self._embed_task: asyncio.Task[None] | None = None
        self._to_insert: list[tuple[dict[str, Any], asyncio.Future[int]]] = []
        self._inserter: asyncio.Task[None] | None = None
        self._clock = clock
        # A message is recalled with its own text, then remembered; where the stored text is the same
        # (no author name, e.g. the web chat), its vector is the query's: embedded once, not twice.
        self._query_vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    def _engine_options(self) -> dict[str, Any]:
        if self._is_sqlite:
            # Readers run concurrently in WAL mode; enough connections for a worker's messages in flight.
            return {"connect_args": {"timeout": 30}, "pool_size": 10, "max_overflow": 10}
        return {"pool_size": 10, "max_overflow": 20}

    # ------------------------------------------------------------------ lifecycle

    async def init(self) -> None:
        """Create the tables and indexes, and qualify legacy user ids once; safe to call on every start."""
        async with self._engine.begin() as conn:
            for statement in self._dialect.schema():
                await conn.execute(text(statement))
        await self._qualify_legacy_user_ids()

    async def _qualify_legacy_user_ids(self) -> None:
        """Rows of older versions hold bare user ids: rewrite them to qualified keys, exactly once.

        The marker row is inserted first, in the same transaction: of several workers starting at
        once, only the one whose insert lands migrates (PostgreSQL makes the others wait for its
        commit, SQLite has one writer), and a database migrated once is never touched again.
        """
        meta = self._dialect.meta
        async with self._write_lock if self._is_sqlite else _NO_LOCK, self._engine.begin() as conn:
            await conn.execute(text(f"CREATE TABLE IF NOT EXISTS {meta} (name TEXT PRIMARY KEY, value TEXT NOT NULL)"))
            claimed = await conn.execute(
                text(f"INSERT INTO {meta} (name, value) VALUES ('user_ids', 'qualified') ON CONFLICT (name) DO NOTHING")
            )
            if not claimed.rowcount:
                return
            rows = (
                await conn.execute(
                    text(
                        f"SELECT id, conversation_key, platform, bot_id, user_id, scope FROM {self._dialect.turns} "
                        "WHERE user_id != ''"
                    )
                )
            ).all()
            updates = []
            for row in rows:
                if row.platform not in PLATFORMS:
                    continue  # a turn stored without its platform cannot be qualified; left as it was
                qualified = user_key(row.platform, row.bot_id, row.user_id)
                turn = Turn(
                    row.conversation_key, "user", "", "", platform=row.platform, bot_id=row.bot_id,
                    user_id=qualified, scope=Scope(row.scope),
                )  # fmt: skip
                updates.append({"id": row.id, "user_id": qualified, "scope_key": turn_scope_token(turn)})
            if updates:
                await conn.execute(
                    text(f"UPDATE {self._dialect.turns} SET user_id = :user_id, scope_key = :scope_key WHERE id = :id"),
                    updates,
                )
                if self._is_sqlite:  # the FTS index holds each row's scope token: rebuild it from the table
                    fts = self._dialect.prefix + "_fts"
                    await conn.execute(text(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')"))
                log.warning("memory: qualified the user ids of %d turns stored by an older version", len(updates))

    async def flush(self) -> None:
        """Wait until every remembered turn has its vector (or its failure was counted)."""
        if self._embed_task is not None:
            await self._pending.join()

    async def aclose(self) -> None:
        await self.flush()
        if self._embed_task is not None:
            self._embed_task.cancel()
            await asyncio.gather(self._embed_task, return_exceptions=True)
            self._embed_task = None
        await self._engine.dispose()

    async def drop(self) -> None:
        """Remove this memory's tables (tests and benchmarks on a shared database)."""
        async with self._engine.begin() as conn:
            if self._is_sqlite:
                await conn.execute(text(f"DROP TABLE IF EXISTS {self._dialect.prefix}_fts"))
            await conn.execute(text(f"DROP TABLE IF EXISTS {self._dialect.turns}"))
            await conn.execute(text(f"DROP TABLE IF EXISTS {self._dialect.meta}"))

    # ------------------------------------------------------------------ Memory protocol

    async def remember(self, turn: Turn) -> None:
        started = time.perf_counter()
        values = {
            "conversation_key": turn.conversation_key,
            "role": turn.role,
            "text": clean_text(turn.text),  # also what an LLM answered: NUL never reaches either backend
            "author_id": turn.author_id,
            "author_name": clean_display_name(turn.author_name),
            "platform": turn.platform,
            "bot_id": turn.bot_id,
            "user_id": turn.user_id,
            "scope": Scope(turn.scope).value,
            "message_id": turn.message_id,
            "ts": turn.timestamp.timestamp(),
            "scope_key": turn_scope_token(turn),
        }
        for name in ("conversation_key", "author_id", "user_id", "message_id", "bot_id", "platform"):
            values[name] = str(values[name]).replace("\x00", "")  # ids from envelopes never have one; others might
        turn_id = await self._insert(values)
        if turn.text.strip() and (turn.role != "assistant" or self.settings.embed_assistant_turns):
            self._ensure_embedder_task()
            self._pending.put_nowait((int(turn_id), embedding_text(turn)))
        REMEMBER_SECONDS.observe(time.perf_counter() - started)

    async def _insert(self, values: dict[str, Any]) -> int:
        """Group commit: turns remembered while a transaction runs are written together in the next one.

        A worker remembers two turns per message for a hundred conversations at once; one commit per
        turn would make every reply wait in the single-writer queue of SQLite.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._to_insert.append((values, future))
        if self._inserter is None or self._inserter.done():
            self._inserter = loop.create_task(self._insert_batches(), name="memory-writer")
        return await future

    async def _insert_batches(self) -> None:
        sql = text(self._dialect.insert_sql())
        while self._to_insert:
            batch, self._to_insert = self._to_insert, []
            try:
                async with self._write_lock if self._is_sqlite else _NO_LOCK, self._engine.begin() as conn:
                    ids = [int((await conn.execute(sql, values)).scalar_one()) for values, _ in batch]
            except Exception as exc:  # every waiter gets the failure: its remember() raises, nothing is lost quietly
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), turn_id in zip(batch, ids, strict=True):
                if not future.done():
                    future.set_result(turn_id)

    async def history(self, conversation_key: str, limit: int) -> list[Turn]:
        if limit <= 0:
            return []
        sql = (
            f"SELECT {self._dialect.columns} FROM {self._dialect.turns} m WHERE conversation_key = :conversation "
            "ORDER BY ts DESC, id DESC LIMIT :limit"
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(text(sql), {"conversation": conversation_key, "limit": limit})).all()
        return [_turn(dict(row._mapping)) for row in reversed(rows)]

    async def recall(self, query: RecallQuery) -> list[Recalled]:
        started = time.perf_counter()
        try:
            return await self._recall(query)
        finally:
            RECALL_SECONDS.observe(time.perf_counter() - started)

    async def forget_user(self, user_id: str) -> int:
        """Delete every turn this user wrote or that was said to them, with its index entries and vector.

        ``user_id`` is a qualified key: only that platform's (and on Slack that workspace's) user is
        forgotten. On SQLite the WAL is checkpointed afterwards, so the deleted turns do not linger in it
        (``secure_delete`` already zeroes their pages in the database file).
        """
        platform, workspace, author = split_user_key(user_id)
        sql = (
            f"DELETE FROM {self._dialect.turns} WHERE user_id = :user "
            "OR (author_id = :author AND platform = :platform AND (:workspace = '' OR bot_id = :workspace))"
        )
        values = {"user": user_id, "author": author, "platform": platform, "workspace": workspace}
        deleted = await self._delete(sql, values)
        log.info("memory: forgot user %s (%d turns)", user_id, deleted)
        return deleted

    async def _delete(self, sql: str, values: dict[str, Any]) -> int:
        self._query_vectors.clear()  # recent message texts, kept only for reuse: none outlives a forget
        async with self._write_lock if self._is_sqlite else _NO_LOCK:
            async with self._engine.begin() as conn:
                deleted = (await conn.execute(text(sql), values)).rowcount
            if self._is_sqlite:
                async with self._engine.connect() as conn:
                    await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        return int(deleted or 0)

    async def forget_messages(self, user_id: str, message_ids: list[str]) -> int:
        """Delete these messages of this user and the bot's answers to them (``re:<id>``); the tool ``forget_memory``.

        Only turns whose ``user_id`` is this user's qualified key: another user's turn with the same
        platform message id is never touched.
        """
        ids = [*message_ids, *(f"re:{mid}" for mid in message_ids)]
        if not ids:
            return 0
        names = [f"m{i}" for i in range(len(ids))]
        sql = (
            f"DELETE FROM {self._dialect.turns} WHERE user_id = :user "
            f"AND message_id IN ({', '.join(':' + n for n in names)})"
        )
        return await self._delete(sql, {"user": user_id, **dict(zip(names, ids, strict=True))})

    # ------------------------------------------------------------------ retrieval

    async def _recall(self, query: RecallQuery) -> list[Recalled]:
        if query.limit <= 0:
            return []
        branches, scope_values = scope_filter(query)
        terms = _unique_terms(query.text)
        settings = self.settings
        async with self._engine.connect() as conn:
            lexical: dict[int, float] = {}
            if terms:
                lexical_sql = self._dialect.lexical_sql(" OR ".join(branches))
                params = {
                    **scope_values,
                    "match": self._dialect.lexical_terms(terms, query_scope_tokens(query)),
                    "pool": settings.lexical_pool,
                }
                lexical = {int(r[0]): float(r[1]) for r in (await conn.execute(text(lexical_sql), params)).all()}
            window_sql = " UNION ALL ".join(
                f"SELECT * FROM (SELECT m.id, m.ts, m.embedding FROM {self._dialect.turns} m WHERE {branch} "
                "ORDER BY m.ts DESC LIMIT :window) AS b" + str(i)
                for i, branch in enumerate(branches)
            )
            candidates = list(
                (await conn.execute(text(window_sql), {**scope_values, "window": settings.vector_window})).all()
            )
            seen = {int(r[0]) for r in candidates}
            missing = [i for i in lexical if i not in seen]
            if missing:
                candidates += await self._rows_by_id(conn, missing, "id, ts, embedding")
        if not candidates:
            return []  # nothing this scope may see: no need to embed the query at all
        # The connection goes back to the pool while the query is embedded: with 50 recalls in flight,
        # holding it across the embedder's batch exhausted the pool (bench/memory_scale.py).
        query_vector = await self._query_vector(query.text)
        ids = np.fromiter((int(r[0]) for r in candidates), dtype=np.int64, count=len(candidates))
        timestamps = np.fromiter((float(r[1]) for r in candidates), dtype=np.float64, count=len(candidates))
        scores = self._score(ids, timestamps, [r[2] for r in candidates], lexical, query_vector)
        top = np.argsort(-scores, kind="stable")[: query.limit]
        chosen = [int(ids[i]) for i in top]
        async with self._engine.connect() as conn:  # a turn forgotten meanwhile is simply not returned
            rows = {int(r.id): r._mapping for r in await self._rows_by_id(conn, chosen, self._dialect.columns)}
        return [
            Recalled(turn=_turn(rows[i]), score=float(scores[j])) for i, j in zip(chosen, top, strict=True) if i in rows
        ]

    def _score(
        self,
        ids: np.ndarray,
        timestamps: np.ndarray,
        blobs: Sequence[bytes | None],
        lexical: Mapping[int, float],
        query_vector: np.ndarray | None,
    ) -> np.ndarray:
        s = self.settings
        lexical_scores = np.zeros(len(ids), dtype=np.float64)
        if lexical:
            best = max(lexical.values()) or 1.0
            lexical_scores = np.fromiter(
                (lexical.get(int(i), 0.0) / best for i in ids), dtype=np.float64, count=len(ids)
            )
        vector_scores = np.zeros(len(ids), dtype=np.float64)
        if query_vector is not None:
            width = self.embedder.dim * 2  # float16
            usable = [k for k, blob in enumerate(blobs) if blob is not None and len(blob) == width]
            if usable:
                matrix = np.frombuffer(b"".join(bytes(blobs[k]) for k in usable), dtype=np.float16)  # type: ignore[arg-type]
                similarity = matrix.reshape(len(usable), self.embedder.dim).astype(np.float32) @ query_vector
                vector_scores[usable] = np.clip(similarity, 0.0, 1.0)
        age_days = np.maximum(self._clock() - timestamps, 0.0) / _DAY
        recency = np.power(0.5, age_days / max(s.recency_half_life_days, 1e-6))
        return s.lexical_weight * lexical_scores + s.vector_weight * vector_scores + s.recency_weight * recency

    async def _query_vector(self, message: str) -> np.ndarray | None:
        if not message.strip():
            return None
        try:
            vector = (await self.embedder.embed([message]))[0]
        except Exception:
            # Recall still answers from the lexical index and recency; the miss is counted, never hidden.
            EMBEDDING_FAILURES.labels(stage="query").inc()
            log.exception("memory: query embedding failed with %s; recall is lexical+recency only", self.embedder.name)
            return None
        self._query_vectors[message] = vector
        if len(self._query_vectors) > _REUSABLE_VECTORS:
            self._query_vectors.popitem(last=False)
        return vector

    async def _rows_by_id(self, conn: AsyncConnection, ids: list[int], columns: str) -> list[Any]:
        if not ids:
            return []
        marks = ", ".join(f":id{i}" for i in range(len(ids)))
        sql = f"SELECT {columns} FROM {self._dialect.turns} m WHERE id IN ({marks})"
        return list((await conn.execute(text(sql), {f"id{i}": v for i, v in enumerate(ids)})).all())

    # ------------------------------------------------------------------ background embedding

    async def _turn_vectors(self, texts: list[str]) -> np.ndarray:
        """Vectors of ``texts``: those a recall just embedded are reused, only the others are embedded."""
        rows = [self._query_vectors.pop(text, None) for text in texts]
        missing = [i for i, row in enumerate(rows) if row is None]
        if missing:
            fresh = await self.embedder.embed([texts[i] for i in missing])
            for k, i in enumerate(missing):
                rows[i] = fresh[k]
        return np.stack([np.asarray(row, dtype=np.float32) for row in rows])

    def _ensure_embedder_task(self) -> None:
        if self._embed_task is None or self._embed_task.done():
            self._embed_task = asyncio.get_running_loop().create_task(self._embed_pending(), name="memory-embedder")

    async def _embed_pending(self) -> None:
        while True:
            batch = [await self._pending.get()]
            deadline = asyncio.get_running_loop().time() + _EMBED_LINGER_S
            while len(batch) < _EMBED_BATCH:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._pending.get(), remaining))
                except TimeoutError:
                    break
            try:
                vectors = await self._turn_vectors([t for _, t in batch])
                sql = f"UPDATE {self._dialect.turns} SET embedding = :embedding WHERE id = :id"
                params = [
                    {"id": turn_id, "embedding": vectors[k].astype(np.float16).tobytes()}
                    for k, (turn_id, _) in enumerate(batch)
                ]
                async with self._write_lock if self._is_sqlite else _NO_LOCK, self._engine.begin() as conn:
                    await conn.execute(text(sql), params)
            except Exception:
                EMBEDDING_FAILURES.labels(stage="store").inc(len(batch))
                log.exception("memory: %d turns stored without vectors (embedder %s)", len(batch), self.embedder.name)
            finally:
                for _ in batch:
                    self._pending.task_done()


class _NoLock:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Forgetting must not leave a user's words in free pages of the file.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _turn(row: Mapping[str, Any]) -> Turn:
    return Turn(
        conversation_key=row["conversation_key"],
        role=row["role"],
        text=row["text"],
        author_id=row["author_id"],
        author_name=row["author_name"],
        platform=row["platform"],
        bot_id=row["bot_id"],
        user_id=row["user_id"],
        scope=Scope(row["scope"]),
        message_id=row["message_id"],
        timestamp=datetime.fromtimestamp(float(row["ts"]), UTC),
    )
