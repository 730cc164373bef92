"""Built-in tools, offered only when ``[tools] builtins`` names them.

- ``current_time``: the date and time now, in the user's time zone when the message carries one
  (``hints["timezone"]``, an IANA name), else UTC, said so.
- ``search_memory``: the user's own earlier messages about a query, through the (patched) memory's
  ``recall`` with exactly the scope the answer's own recall uses (docs/memory.md): a DM reaches the
  user's private memories, a channel only that channel's; turns of other people are dropped.
- ``forget_memory``: deletes the user's own messages about a topic that recall finds (and the
  bot's answers to them), plus the user's cached LLM answers, which may repeat them. The result
  tells the model what was deleted, so the reply confirms it. Everything else about the user stays:
  ``patchbay forget`` is the operator's tool for a whole user.

Built-ins act on the user of the message only: the user key comes from the message, never from
the model's arguments.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from workers.components import Memory, Recalled, RecallQuery, Scope
from workers.tools.base import BUILTIN_SERVER, ToolContext, ToolError, ToolSpec

__all__ = ["BuiltinTools"]

log = logging.getLogger(__name__)

_QUERY = {
    "type": "object",
    "properties": {"query": {"type": "string", "description": "what to look for, in a few words"}},
    "required": ["query"],
}
_SPECS = {
    "current_time": ToolSpec(
        BUILTIN_SERVER,
        "current_time",
        "The current date, time and weekday for the user (their time zone when known).",
        {"type": "object", "properties": {}},
    ),
    "search_memory": ToolSpec(
        BUILTIN_SERVER,
        "search_memory",
        "Search what this user told you in earlier conversations. Use it for 'what did I tell you about...'.",
        _QUERY,
    ),
    "forget_memory": ToolSpec(
        BUILTIN_SERVER,
        "forget_memory",
        "Delete what this user told you about a topic, when they ask you to forget it. Confirm what was forgotten.",
        {
            "type": "object",
            "properties": {"about": {"type": "string", "description": "the topic to forget, in a few words"}},
            "required": ["about"],
        },
    ),
}
_SEARCH_LIMIT = 5
_FORGET_LIMIT = 20


class BuiltinTools:
    """A ``ToolSource`` of the enabled built-ins."""

    name = BUILTIN_SERVER

    def __init__(self, enabled: list[str], memory: Memory | None, redis_url: str | None) -> None:
        unknown = [name for name in enabled if name not in _SPECS]
        if unknown:
            log.warning("unknown built-in tools %s ignored; known: %s", unknown, ", ".join(_SPECS))
        self.enabled = [name for name in dict.fromkeys(enabled) if name in _SPECS]
        if memory is None:
            self.enabled = [name for name in self.enabled if name == "current_time"]
        self.memory = memory
        self.redis_url = redis_url

    async def list_tools(self) -> list[ToolSpec]:
        return [_SPECS[name] for name in self.enabled]

    async def call(self, tool: str, arguments: dict[str, Any], context: ToolContext) -> str:
        if tool == "current_time":
            return current_time(context.timezone)
        if tool == "search_memory":
            return await self._search(str(arguments.get("query", "")), context)
        if tool == "forget_memory":
            return await self._forget(str(arguments.get("about", "")), context)
        raise ToolError(f"no built-in tool {tool!r}")

    async def _own_memories(self, text: str, context: ToolContext, limit: int) -> list[Recalled]:
        if not text.strip():
            raise ToolError("say what to look for")
        if self.memory is None or not context.user_key or not context.conversation_key:
            raise ToolError("memory is not available for this message")
        found = await self.memory.recall(
            RecallQuery(
                text=text,
                conversation_key=context.conversation_key,
                user_id=context.user_key,
                scope=Scope.PRIVATE if context.is_direct else Scope.CHANNEL,
                bot_id=context.bot_id,
                platform=context.platform,
                limit=limit,
            )
        )
        # The user's own words only: a channel's memory holds other people's too.
        return [item for item in found if item.turn.role == "user" and item.turn.user_id == context.user_key]

    async def _search(self, query: str, context: ToolContext) -> str:
        found = await self._own_memories(query, context, _SEARCH_LIMIT)
        if not found:
            return f"Nothing found about {query!r} in what this user told you."
        lines = [f"- {item.turn.timestamp:%Y-%m-%d}: {item.turn.text}" for item in found]
        return "What the user told you earlier:\n" + "\n".join(lines)

    async def _forget(self, about: str, context: ToolContext) -> str:
        from workers.memory.text import content_words

        # Recall ranks by similarity and always finds *something*; deleting needs the topic's own words.
        topic = set(content_words(about))
        found = [
            item
            for item in await self._own_memories(about, context, _FORGET_LIMIT)
            if topic & set(content_words(item.turn.text))
        ]
        if not found:
            return f"Nothing to forget: no earlier message of this user is about {about!r}. Tell the user so."
        assert context.user_key is not None
        deleted = await _delete_turns(
            context.user_key, [item.turn.message_id for item in found if item.turn.message_id]
        )
        await _drop_cached_answers(self.redis_url, context.user_key)
        log.info("forget_memory: deleted %d turns of %s on request", deleted, context.user_key)
        quoted = "; ".join(item.turn.text[:80] for item in found[:5])
        return (
            f"Deleted {len(found)} earlier message(s) of this user about {about!r} (with your answers to them): "
            f"{quoted}. Confirm to the user that this is forgotten."
        )


def current_time(timezone: str | None) -> str:
    zone: Any = UTC
    label = "UTC (the user's time zone is not known)"
    if timezone:
        try:
            zone, label = ZoneInfo(timezone), timezone
        except (ZoneInfoNotFoundError, ValueError):
            log.debug("unknown time zone %r: answering in UTC", timezone)
    now = datetime.now(zone)
    return f"{now:%A %Y-%m-%d %H:%M}, time zone {label}"


async def _delete_turns(user_key: str, message_ids: list[str]) -> int:
    """Through a store of its own, as ``workers.forget`` does: deleting needs no embedder."""
    from gateway.shared.settings import Settings
    from workers.memory.embedder import HashEmbedder
    from workers.memory.store import SqlMemory

    if not message_ids:
        return 0
    store = SqlMemory(Settings().sqlalchemy_url, embedder=HashEmbedder())
    try:
        await store.init()
        return await store.forget_messages(user_key, message_ids)
    finally:
        await store.aclose()


async def _drop_cached_answers(redis_url: str | None, user_key: str) -> None:
    from workers.llm.cache import ResponseCache
    from workers.llm.settings import LLMSettings

    if not redis_url:
        return
    settings = LLMSettings()
    cache = ResponseCache(redis_url, namespace=settings.cache_namespace, ttl_s=settings.cache_ttl_s)
    try:
        await cache.forget_user(user_key)
    except Exception as exc:  # the memories are gone; a cached answer expires within the cache's TTL
        log.warning("forget_memory: dropping cached answers failed: %r", exc)
    finally:
        await cache.aclose()
