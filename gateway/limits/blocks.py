"""The block list: users and conversations refused at admission, kept in two Redis hashes.

A user is its qualified key (``discord:81234``, ``slack:T0123:U0456``: ``gateway.shared.identity``)
and a conversation ``<platform>:<id>``, because an id is only unique within its platform (and a
Slack user within its workspace). A bare id is refused with the qualified forms in the message.
Each entry keeps why and when it was added, so ``list`` answers "why is X blocked?".
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Literal

import redis.asyncio as aioredis

from gateway.limits.keys import LimitKeys
from gateway.shared.identity import parse_user_key

__all__ = ["BlockEntry", "BlockKind", "BlockList"]

BlockKind = Literal["user", "conversation"]


@dataclass(frozen=True, slots=True)
class BlockEntry:
    kind: BlockKind
    id: str  # "<platform>:<id>"
    reason: str = ""
    added_at: float = 0.0

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _check_id(kind: BlockKind, value: str) -> str:
    if kind == "user":
        return parse_user_key(value)
    platform, sep, rest = value.partition(":")
    if not sep or not platform or not rest:
        raise ValueError(f"{value!r}: expected <platform>:<conversation id>, e.g. slack:C024BE91L")
    return value


class BlockList:
    def __init__(self, redis: aioredis.Redis, prefix: str = "pb") -> None:
        self._redis = redis
        self._keys = LimitKeys(prefix)

    def _hash(self, kind: BlockKind) -> str:
        return self._keys.blocked_users if kind == "user" else self._keys.blocked_conversations

    async def block(self, kind: BlockKind, ident: str, reason: str = "") -> BlockEntry:
        entry = BlockEntry(kind, _check_id(kind, ident), reason, time.time())
        await self._redis.hset(self._hash(kind), entry.id, json.dumps({"reason": reason, "added_at": entry.added_at}))
        return entry

    async def unblock(self, kind: BlockKind, ident: str) -> bool:
        return bool(await self._redis.hdel(self._hash(kind), _check_id(kind, ident)))

    async def block_user(self, ident: str, reason: str = "") -> BlockEntry:
        return await self.block("user", ident, reason)

    async def unblock_user(self, ident: str) -> bool:
        return await self.unblock("user", ident)

    async def block_conversation(self, ident: str, reason: str = "") -> BlockEntry:
        return await self.block("conversation", ident, reason)

    async def unblock_conversation(self, ident: str) -> bool:
        return await self.unblock("conversation", ident)

    async def is_blocked(self, kind: BlockKind, ident: str) -> BlockEntry | None:
        raw = await self._redis.hget(self._hash(kind), ident)
        return None if raw is None else _entry(kind, ident, raw)

    async def list_blocks(self, kind: BlockKind | None = None) -> list[BlockEntry]:
        kinds: list[BlockKind] = [kind] if kind else ["user", "conversation"]
        entries: list[BlockEntry] = []
        for each in kinds:
            stored = await self._redis.hgetall(self._hash(each))
            entries += [_entry(each, _text(ident), raw) for ident, raw in stored.items()]
        return sorted(entries, key=lambda entry: (entry.kind, entry.id))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry(kind: BlockKind, ident: str, raw: bytes | str) -> BlockEntry:
    data = json.loads(raw)
    return BlockEntry(kind, ident, str(data.get("reason", "")), float(data.get("added_at", 0.0)))
