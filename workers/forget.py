"""Forget a user everywhere the stack keeps something of them: one operation for the CLI and the admin API.

``user_key`` is platform-qualified (``telegram:1001``; ``gateway.shared.identity``): exactly that
user is forgotten, never the web chat user who happens to be called ``1001`` too. Deleted:

- memory turns (the user's and the bot's answers to them) with their index entries and vectors;
  SQLite's WAL is checkpointed so the text does not linger there;
- the emotional state and the ``/voice`` choice;
- the web chat replies stored for the user (kept an hour for polling) and their ratings;
- the LLM cache entries stored while answering the user;
- then Redis rewrites its AOF (and saves its RDB), so deleted keys are gone from disk too, not only
  from memory. A Redis that refuses (a managed service) is reported, not hidden.

Analytics keep only pseudonymised ids and no text (docs/analytics.md), so nothing there names the user.
"""

from __future__ import annotations

import asyncio
import logging
import re

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.shared.forgetting import Forgotten
from gateway.shared.identity import parse_user_key
from gateway.shared.keys import webchat_rating, webchat_upload, webchat_user_replies
from gateway.shared.redis_urls import redis_py_url
from gateway.shared.settings import Settings

__all__ = ["Forgotten", "forget_user", "rewrite_persistence"]

log = logging.getLogger(__name__)

_REPLY_PREFIX = "patchbay:webchat:reply:"


async def forget_user(settings: Settings, user_key: str) -> Forgotten:
    from workers.emotion import EmotionManager
    from workers.llm.cache import ResponseCache
    from workers.llm.settings import LLMSettings
    from workers.memory.embedder import HashEmbedder
    from workers.memory.store import SqlMemory
    from workers.voice.preferences import VoicePreferences

    user_key = parse_user_key(user_key)
    memory = SqlMemory(settings.sqlalchemy_url, embedder=HashEmbedder())  # deleting needs no model
    try:
        await memory.init()
        turns = await memory.forget_user(user_key)
    finally:
        await memory.aclose()
    redis_url = redis_py_url(settings.effective_redis_url)
    emotions = EmotionManager(redis_url)
    try:
        had_emotion = await emotions.forget_user(user_key)
    finally:
        await emotions.aclose()
    llm = LLMSettings()
    cache = ResponseCache(redis_url, namespace=llm.cache_namespace, ttl_s=llm.cache_ttl_s)
    try:
        cached = await cache.forget_user(user_key)
    finally:
        await cache.aclose()
    async with Redis.from_url(redis_url) as redis:
        had_voice = await VoicePreferences(redis).forget_user(user_key)
        replies = await _forget_webchat_replies(redis, user_key)
        await _forget_webchat_uploads(redis, user_key)
        persistence = await rewrite_persistence(redis)
    done = Forgotten(user_key, turns, had_emotion, had_voice, replies, cached, persistence)
    log.warning("forgot user %s: %s", user_key, done)
    return done


async def _forget_webchat_replies(redis: Redis, user_key: str) -> int:
    index = webchat_user_replies(user_key)
    stored = [key.decode() if isinstance(key, bytes) else key for key in await redis.smembers(index)]
    if not stored:
        return 0
    async with redis.pipeline(transaction=False) as pipe:
        for key in stored:
            pipe.delete(key)
            pipe.delete(webchat_rating(key.removeprefix(_REPLY_PREFIX)))
        pipe.delete(index)
        results = await pipe.execute()
    return sum(int(n) for n in results[:-1:2])


async def _forget_webchat_uploads(redis: Redis, user_key: str) -> None:
    """Images uploaded and not yet read (they live minutes at most): keyed by the user, found by pattern."""
    pattern = webchat_upload(re.sub(r"([*?\[\]\\])", r"\\\1", user_key), "*")  # the key's own text, literally
    keys = [key async for key in redis.scan_iter(match=pattern, count=500)]
    if keys:
        await redis.delete(*keys)


async def rewrite_persistence(redis: Redis, *, timeout_s: float = 60.0) -> str:
    """Rewrite the AOF and save the RDB, so what was just deleted is not still on disk; how it went."""
    try:
        config = await redis.config_get("appendonly")
        saves = await redis.config_get("save")
    except RedisError as exc:  # managed Redis services often refuse CONFIG
        return f"not rewritten: {exc}"
    aof, rdb = config.get("appendonly") == "yes", bool(saves.get("save"))
    if not aof and not rdb:
        return "none"
    try:
        if aof:
            try:
                await redis.bgrewriteaof()
            except RedisError as exc:
                if "already in progress" not in str(exc):
                    raise
            await _wait_for(redis, ("aof_rewrite_in_progress", "aof_rewrite_scheduled"), timeout_s)
        if rdb:
            await redis.execute_command("BGSAVE", "SCHEDULE")
            await _wait_for(redis, ("rdb_bgsave_in_progress",), timeout_s)
    except (RedisError, TimeoutError) as exc:
        return f"not rewritten: {exc}"
    return "rewritten"


async def _wait_for(redis: Redis, flags: tuple[str, ...], timeout_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    # A rewrite that a moment ago was only scheduled shows as in progress next: poll until both are clear.
    while True:
        info = await redis.info("persistence")
        if not any(int(info.get(flag, 0)) for flag in flags):
            return
        if loop.time() > deadline:
            raise TimeoutError(f"Redis still busy with {'/'.join(flags)} after {timeout_s:.0f}s")
        await asyncio.sleep(0.05)
