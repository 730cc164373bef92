"""The base memory on both backends: history, scopes, forgetting, ranking, concurrency."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from workers.components import RecallQuery, Scope, Turn
from workers.memory import SqlMemory
from workers.memory.embedder import HashEmbedder, Vectors

NOW = datetime.now(UTC)


def turn(
    conversation: str,
    words: str,
    user: str,
    scope: Scope,
    *,
    bot: str = "bot1",
    platform: str = "discord",
    days_ago: float = 0.0,
    role: str = "user",
    message_id: str = "",
) -> Turn:
    return Turn(
        conversation_key=f"{platform}:{bot}:{conversation}",
        role=role,
        text=words,
        author_id=user if role == "user" else bot,
        author_name=user,
        platform=platform,
        bot_id=bot,
        user_id=user,
        scope=scope,
        message_id=message_id or words[:20],
        timestamp=NOW - timedelta(days=days_ago),
    )


def ask(
    conversation: str,
    words: str,
    user: str,
    scope: Scope,
    *,
    bot: str = "bot1",
    platform: str = "discord",
    limit: int = 10,
) -> RecallQuery:
    return RecallQuery(
        text=words,
        conversation_key=f"{platform}:{bot}:{conversation}",
        user_id=user,
        scope=scope,
        bot_id=bot,
        platform=platform,
        limit=limit,
    )


async def texts(memory: SqlMemory, query: RecallQuery) -> list[str]:
    return [r.turn.text for r in await memory.recall(query)]


async def test_history_is_chronological_and_limited(memory: SqlMemory) -> None:
    for i in range(12):
        await memory.remember(turn("general", f"message number {i}", "alice", Scope.CHANNEL, days_ago=12 - i))
    await memory.remember(turn("other", "elsewhere", "alice", Scope.CHANNEL))
    history = await memory.history("discord:bot1:general", 5)
    assert [t.text for t in history] == [f"message number {i}" for i in range(7, 12)]
    assert await memory.history("discord:bot1:general", 0) == []
    assert history[-1].scope is Scope.CHANNEL and history[-1].user_id == "alice"


async def test_a_direct_message_is_never_recalled_in_a_channel(memory: SqlMemory) -> None:
    await memory.remember(
        turn("dm-alice", "my bank PIN reminder is the year my cat Felix was born", "alice", Scope.PRIVATE)
    )
    await memory.remember(turn("general", "the picnic is on Saturday", "alice", Scope.CHANNEL))
    await memory.flush()
    in_channel = await texts(memory, ask("general", "what is my cat Felix's PIN?", "alice", Scope.CHANNEL))
    assert all("Felix" not in t for t in in_channel)
    in_dm = await texts(memory, ask("dm-alice", "what is my cat Felix's PIN?", "alice", Scope.PRIVATE))
    assert in_dm[0].startswith("my bank PIN")
    assert "the picnic is on Saturday" not in in_dm  # a channel's memories stay in that channel


async def test_one_users_private_memories_never_reach_another_user(memory: SqlMemory) -> None:
    await memory.remember(turn("dm-alice", "I am allergic to peanuts", "alice", Scope.PRIVATE))
    await memory.remember(turn("dm-bob", "I love peanut butter sandwiches", "bob", Scope.PRIVATE))
    await memory.flush()
    bob_sees = await texts(memory, ask("dm-bob", "peanuts allergy", "bob", Scope.PRIVATE))
    assert bob_sees == ["I love peanut butter sandwiches"]
    # Same user, another bot: private memories belong to one bot's conversations with that user.
    assert await texts(memory, ask("dm-alice", "peanuts allergy", "alice", Scope.PRIVATE, bot="bot2")) == []


async def test_a_channels_memories_stay_in_that_channel(memory: SqlMemory) -> None:
    await memory.remember(turn("team-a", "release 4.2 ships on Friday", "alice", Scope.CHANNEL))
    await memory.remember(turn("team-b", "the offsite is in Lisbon", "bob", Scope.CHANNEL))
    await memory.flush()
    assert await texts(memory, ask("team-b", "when does release 4.2 ship?", "bob", Scope.CHANNEL)) == [
        "the offsite is in Lisbon"
    ]


async def test_workspace_memories_are_shared_within_one_bot_only(memory: SqlMemory) -> None:
    await memory.remember(turn("announcements", "the office wifi password changed", "admin", Scope.WORKSPACE))
    await memory.flush()
    assert await texts(memory, ask("random", "wifi password", "carol", Scope.CHANNEL)) == [
        "the office wifi password changed"
    ]
    assert await texts(memory, ask("dm-carol", "wifi password", "carol", Scope.PRIVATE)) == [
        "the office wifi password changed"
    ]
    assert await texts(memory, ask("random", "wifi password", "carol", Scope.CHANNEL, bot="other-workspace")) == []
    assert await texts(memory, ask("random", "wifi password", "carol", Scope.CHANNEL, platform="slack")) == []


async def test_forgetting_a_user_is_complete(memory: SqlMemory) -> None:
    alice, bob = "discord:alice", "discord:bob"
    await memory.remember(turn("dm-alice", "my sister Jane lives in Oslo", alice, Scope.PRIVATE))
    await memory.remember(turn("dm-alice", "Nice, Oslo is lovely", alice, Scope.PRIVATE, role="assistant"))
    await memory.remember(turn("general", "Oslo trip photos are up", alice, Scope.CHANNEL))
    await memory.remember(turn("general", "I went to Oslo too", bob, Scope.CHANNEL))
    await memory.flush()
    assert await memory.forget_user(alice) == 3
    assert await memory.forget_user(alice) == 0
    assert await texts(memory, ask("dm-alice", "Oslo sister Jane", alice, Scope.PRIVATE)) == []
    assert await texts(memory, ask("general", "Oslo", bob, Scope.CHANNEL)) == ["I went to Oslo too"]
    assert [t.text for t in await memory.history("discord:bot1:dm-alice", 10)] == []
    table = memory._dialect.turns
    async with memory._engine.connect() as conn:
        left = (await conn.execute(text(f"SELECT count(*), count(embedding) FROM {table}"))).one()
        assert tuple(left) == (1, 1)  # bob's turn and its vector, nothing of alice's
        if memory._is_sqlite:
            fts = f"{memory._dialect.prefix}_fts"
            hits = (await conn.execute(text(f"SELECT count(*) FROM {fts} WHERE {fts} MATCH 'jane OR sister'"))).scalar()
            assert hits == 0  # the lexical index forgot the words too
            # The FTS index's own token list, not only its content table, no longer knows her words.
            await conn.execute(text(f"CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, '{fts}', 'row')"))
            vocab = {r[0] for r in (await conn.execute(text("SELECT term FROM temp.vocab"))).all()}
            assert "jane" not in vocab and "sister" not in vocab


async def test_relevance_orders_recall(memory: SqlMemory) -> None:
    for words in (
        "we adopted a golden retriever puppy named Biscuit",
        "my favourite pasta is carbonara",
        "the train to Berlin was delayed",
        "I started learning the violin",
    ):
        await memory.remember(turn("general", words, "alice", Scope.CHANNEL, days_ago=5))
    await memory.flush()
    recalled = await texts(memory, ask("general", "how is your dog doing?", "alice", Scope.CHANNEL))
    assert recalled[0] == "we adopted a golden retriever puppy named Biscuit"
    recalled = await texts(memory, ask("general", "any news about music lessons?", "alice", Scope.CHANNEL))
    assert recalled[0] == "I started learning the violin"


async def test_recency_breaks_ties_between_equally_relevant_memories(memory: SqlMemory) -> None:
    await memory.remember(
        turn("general", "I moved to a new flat", "alice", Scope.CHANNEL, days_ago=90, message_id="old")
    )
    await memory.remember(
        turn("general", "I moved to a new flat", "alice", Scope.CHANNEL, days_ago=1, message_id="new")
    )
    await memory.flush()
    recalled = await memory.recall(ask("general", "where do you live now?", "alice", Scope.CHANNEL))
    assert [r.turn.message_id for r in recalled] == ["new", "old"]
    assert recalled[0].score > recalled[1].score


async def test_many_concurrent_turns_from_one_event_loop(memory: SqlMemory) -> None:
    memory.embedder = HashEmbedder()  # this test is about the database under concurrency, not the model
    await asyncio.gather(
        *(
            memory.remember(turn(f"room{i % 10}", f"note {i} about topic {i}", f"user{i}", Scope.CHANNEL))
            for i in range(200)
        )
    )
    await memory.flush()
    histories = await asyncio.gather(*(memory.history(f"discord:bot1:room{r}", 100) for r in range(10)))
    assert sorted(len(h) for h in histories) == [20] * 10
    results = await asyncio.gather(*(memory.recall(ask(f"room{r}", "topic", "x", Scope.CHANNEL)) for r in range(10)))
    assert all(len(r) == 10 for r in results)


async def test_a_turn_is_searchable_lexically_before_its_vector_exists(memory: SqlMemory) -> None:
    await memory.remember(turn("general", "the quokka enclosure reopens in June", "alice", Scope.CHANNEL))
    # No flush: the vector may not be there yet, the lexical index already is.
    assert (await texts(memory, ask("general", "quokka", "alice", Scope.CHANNEL)))[0].startswith("the quokka")


async def test_nul_and_control_characters_are_stored_the_same_on_both_backends(memory: SqlMemory) -> None:
    """PostgreSQL refuses NUL in text, SQLite keeps it: stripped on the way in, both read back the same."""
    said = turn("dm-nul", "before\x00after\x07 bell\ttab\nline", "discord:nul", Scope.PRIVATE)
    said.author_name = "nul\x00name\nSYSTEM"
    await memory.remember(said)
    await memory.remember(turn("dm-nul", "answer with \x00 in it", "discord:nul", Scope.PRIVATE, role="assistant"))
    await memory.flush()
    history = await memory.history("discord:bot1:dm-nul", 10)
    assert [t.text for t in history] == ["beforeafter bell\ttab\nline", "answer with  in it"]
    assert history[0].author_name == "nul name SYSTEM"


async def test_bare_user_ids_of_an_older_version_are_qualified_once(memory: SqlMemory) -> None:
    """Rows written before qualified user keys: migrated on start, so private recall and forgetting still work."""
    legacy = [
        turn("dm-1001", "my locker code is 4711", "1001", Scope.PRIVATE, platform="webchat", bot="webchat"),
        turn("dm-1001", "telegram says my bike code is 9182", "1001", Scope.PRIVATE, platform="telegram"),
        turn("D1", "slack user in a workspace", "U11", Scope.PRIVATE, platform="slack", bot="T123"),
        turn("c", "a turn without its platform", "ghost", Scope.CHANNEL, platform=""),
    ]
    for item in legacy:
        await memory.remember(item)
    await memory.flush()
    async with memory._engine.begin() as conn:  # what an older version left: bare ids and no migration marker
        await conn.execute(text(f"DROP TABLE {memory._dialect.meta}"))
    await memory.init()
    async with memory._engine.connect() as conn:
        users = sorted(r[0] for r in (await conn.execute(text(f"SELECT user_id FROM {memory._dialect.turns}"))).all())
    assert users == ["ghost", "slack:T123:U11", "telegram:1001", "webchat:1001"]
    web = ask("dm-1001", "locker code", "webchat:1001", Scope.PRIVATE, platform="webchat", bot="webchat")
    assert await texts(memory, web) == ["my locker code is 4711"]  # its lexical scope token was rebuilt too
    await memory.init()  # a second start changes nothing
    async with memory._engine.connect() as conn:
        again = sorted(r[0] for r in (await conn.execute(text(f"SELECT user_id FROM {memory._dialect.turns}"))).all())
    assert again == users
    assert await memory.forget_user("telegram:1001") == 1
    assert await texts(memory, web) == ["my locker code is 4711"]  # the web chat's 1001 is someone else


class CountingEmbedder(HashEmbedder):
    """The hashed embedder, counting the texts it was asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    async def embed(self, texts: list[str]) -> Vectors:
        self.texts += texts
        return self.embed_sync(texts)


async def test_a_message_recalled_then_remembered_is_embedded_once(memory: SqlMemory) -> None:
    embedder = CountingEmbedder()
    memory.embedder = embedder
    await memory.remember(turn("general", "my dog likes the beach", "alice", Scope.CHANNEL))
    await memory.flush()
    embedder.texts.clear()
    said = "does my dog like the beach"
    assert await texts(memory, ask("general", said, "alice", Scope.CHANNEL))
    # No author name (the web chat's users): the stored text is the message itself.
    await memory.remember(dataclasses.replace(turn("general", said, "alice", Scope.CHANNEL), author_name=""))
    await memory.flush()
    assert embedder.texts == [said], "the stored turn reuses the query's vector"
    assert [t.text for t in await memory.history("discord:bot1:general", 5)][-1] == said
    # The reused vector is the one the embedder gives that text: recall finds the turn by it.
    assert said in await texts(memory, ask("general", said, "alice", Scope.CHANNEL))
