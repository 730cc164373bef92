"""A small response cache in Redis for whole chats, any number of turns.

litellm's own cache skips chats of more than 4 messages (docs/decisions.md, "litellm"), which is every real
conversation with history, so Patchbay keeps its own. The key (documented in docs/llm.md):

    <namespace>:v1:<sha256 of canonical JSON of
        {"chain": [model strings], "scope": "user:<user_id>" | "shared",
         "messages": [[role, content with whitespace collapsed]], "max_tokens": n, "temperature": t}>

A request that offers tools adds ``"tools": [their names]`` to the canonical JSON, and a message of the
tool loop (an assistant turn asking for tool calls, a tool's result) adds its calls (names and
arguments, not the providers' call ids) or the tool's name, so
an answer given with tools is never served for the same words without them, nor the reverse. An
answer that asks for tool calls is not stored: only finished answers are. Whether a step whose tools
returned live data may be cached at all is the tool loop's decision (``use_cache``).

A request marked ``personal`` is scoped to its user id, so a reply built on one user's context is
never served to another; a personal request without a user id is not cached at all. Every entry
stored while answering a user is also listed under ``<namespace>:by-user:<user key>`` (a set with the
same TTL), so forgetting the user drops their cached answers at once instead of an hour later.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis

from gateway.shared.keys import llm_cache_user_index
from workers.components import LLMRequest, LLMResult
from workers.llm.metrics import CACHE_ERRORS, CACHE_REQUESTS

__all__ = ["CacheOutcome", "ResponseCache", "cache_key"]

log = logging.getLogger(__name__)

_KEY_VERSION = "v1"


class CacheOutcome(StrEnum):
    HIT = "hit"
    MISS = "miss"
    BYPASS = "bypass"


def _normalise(content: str) -> str:
    return " ".join(content.split())


def _canonical_message(message: dict[str, Any]) -> list[Any]:
    entry: list[Any] = [message.get("role", ""), _normalise(str(message.get("content", "")))]
    # Only the tool loop's messages carry these: every key of a plain chat stays what it was. Call ids
    # are left out: providers make them up per call, so the same calls would never meet again.
    if message.get("tool_calls"):
        entry.append(
            [
                [str(c.get("function", {}).get("name")), str(c.get("function", {}).get("arguments"))]
                for c in message["tool_calls"]
            ]
        )
    if message.get("role") == "tool":
        entry.append(str(message.get("name", "")))
    return entry


def cache_key(namespace: str, chain: list[str], request: LLMRequest, messages: list[dict[str, Any]]) -> str | None:
    """The key of this request's answer, or None when it must not be cached (personal without a user)."""
    if request.personal and not request.user_id:
        return None
    canonical: dict[str, Any] = {
        "chain": chain,
        "scope": f"user:{request.user_id}" if request.personal else "shared",
        "messages": [_canonical_message(m) for m in messages],
        "max_tokens": request.max_tokens,
        "temperature": round(request.temperature, 3),
    }
    if request.tools:
        canonical["tools"] = sorted(str(t.get("function", {}).get("name", "")) for t in request.tools)
    digest = hashlib.sha256(json.dumps(canonical, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()
    return f"{namespace}:{_KEY_VERSION}:{digest}"


@dataclass(slots=True)
class _Lookup:
    outcome: CacheOutcome
    key: str | None
    result: LLMResult | None = None


class ResponseCache:
    """Get/put finished answers; a Redis failure is counted and logged, and the call goes on uncached."""

    def __init__(self, redis_url: str, *, namespace: str, ttl_s: int) -> None:
        self._redis_url = redis_url
        self.namespace = namespace
        self.ttl_s = ttl_s
        self._client: aioredis.Redis | None = None

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            # A blocking pool waits for a free connection under a burst instead of failing with "Too many connections".
            pool = aioredis.BlockingConnectionPool.from_url(self._redis_url, max_connections=64, timeout=5)
            self._client = aioredis.Redis(connection_pool=pool)
        return self._client

    async def lookup(self, chain: list[str], request: LLMRequest, messages: list[dict[str, Any]]) -> _Lookup:
        if not request.use_cache:
            CACHE_REQUESTS.labels(result=CacheOutcome.BYPASS).inc()
            return _Lookup(CacheOutcome.BYPASS, None)
        key = cache_key(self.namespace, chain, request, messages)
        if key is None:
            CACHE_REQUESTS.labels(result=CacheOutcome.BYPASS).inc()
            return _Lookup(CacheOutcome.BYPASS, None)
        try:
            raw = await self._redis().get(key)
        except (aioredis.RedisError, OSError) as exc:
            CACHE_ERRORS.labels(op="get").inc()
            log.warning("LLM cache lookup failed, answering uncached: %s", exc)
            CACHE_REQUESTS.labels(result=CacheOutcome.MISS).inc()
            return _Lookup(CacheOutcome.MISS, None)  # no key: do not try to store into a failing Redis
        if raw is None:
            CACHE_REQUESTS.labels(result=CacheOutcome.MISS).inc()
            return _Lookup(CacheOutcome.MISS, key)
        CACHE_REQUESTS.labels(result=CacheOutcome.HIT).inc()
        stored = json.loads(raw)
        # A cached answer costs nothing now: tokens and cost are those of this call, which made none.
        return _Lookup(
            CacheOutcome.HIT,
            key,
            LLMResult(text=stored["text"], model=stored["model"], provider=stored["provider"], cached=True),
        )

    async def store(self, key: str, result: LLMResult, *, user_key: str | None = None) -> None:
        value = json.dumps(
            {
                "text": result.text,
                "model": result.model,
                "provider": result.provider,
                "cost_usd": result.cost_usd,
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
            }
        )
        try:
            async with self._redis().pipeline(transaction=False) as pipe:
                pipe.set(key, value, ex=self.ttl_s)
                if user_key:
                    index = llm_cache_user_index(user_key, self.namespace)
                    pipe.sadd(index, key)
                    pipe.expire(index, self.ttl_s)
                await pipe.execute()
        except (aioredis.RedisError, OSError) as exc:
            CACHE_ERRORS.labels(op="set").inc()
            log.warning("LLM cache store failed; the answer was delivered but not cached: %s", exc)

    async def forget_user(self, user_key: str) -> int:
        """Delete every entry stored while answering ``user_key``; how many there were."""
        index = llm_cache_user_index(user_key, self.namespace)
        redis = self._redis()
        keys = [k for k in await redis.smembers(index)]
        async with redis.pipeline(transaction=False) as pipe:
            for k in keys:
                pipe.delete(k)
            pipe.delete(index)
            deleted = await pipe.execute()
        return sum(int(n) for n in deleted[:-1])

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
