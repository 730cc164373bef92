"""Gateway side of the web chat: wait for the reply to one message without a Redis connection per request.

One pub/sub subscription per gateway process feeds a dict of futures keyed by message key. A reply is
stored before it is announced, so a sweep also reads the stored replies of requests still waiting
after a moment: a publish missed while the subscription reconnected (redis-py re-subscribes after a
Redis restart without telling us) costs a second, not the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from redis.asyncio import Redis

from adapters.webchat.outbound import REPLY_CHANNEL, reply_key
from adapters.webchat.subscription import subscribe_forever
from gateway.shared.envelope import Reply, parse_reply

__all__ = ["ReplyWaiter"]

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 1.0
RECHECK_S = 5.0  # each waiting request reads its stored reply itself this often


class ReplyWaiter:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._waiting: dict[str, asyncio.Future[Reply]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="webchat-replies"),
            asyncio.create_task(self._sweep(), name="webchat-replies-sweep"),
        ]
        await asyncio.wait_for(self._subscribed.wait(), timeout=10)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def expect(self, message_key: str) -> asyncio.Future[Reply]:
        """Register interest *before* enqueuing, so a fast reply cannot be missed."""
        future = self._waiting.get(message_key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiting[message_key] = future
        return future

    def forget(self, message_key: str) -> None:
        self._waiting.pop(message_key, None)

    async def wait(self, message_key: str, timeout_s: float) -> Reply | None:
        """The reply, or None after ``timeout_s``; never fails because Redis is away for a moment.

        The announcement resolves the future; the stored reply is also read now (a resend of a handled
        message) and every ``RECHECK_S``, so a reply is found even if every announcement and sweep of it
        was missed while Redis restarted (a chaos run once had one request wait out its whole timeout).
        """
        future = self.expect(message_key)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            while True:
                stored = await self._fetch_quietly(message_key)
                if stored is not None:
                    return stored
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                with contextlib.suppress(TimeoutError):
                    return await asyncio.wait_for(asyncio.shield(future), min(remaining, RECHECK_S))
        finally:
            self.forget(message_key)

    async def _fetch_quietly(self, message_key: str) -> Reply | None:
        try:
            return await self.fetch(message_key)
        except Exception as exc:  # Redis away: the announcement, the sweep or the next recheck finds it
            log.debug("web chat reply read failed key=%s: %r", message_key, exc)
            return None

    async def fetch(self, message_key: str) -> Reply | None:
        raw = await self.redis.get(reply_key(message_key))
        return parse_reply(json.loads(raw)) if raw else None

    async def _listen(self) -> None:
        await subscribe_forever(
            self.redis,
            REPLY_CHANNEL,
            self._deliver,
            subscribed=self._subscribed,
            what="web chat reply",
            on_resubscribe=self._collect_missed,
        )

    async def _collect_missed(self) -> None:
        """Replies announced while we were not subscribed (a Redis restart) are still stored: pick them up."""
        await self._collect_missed_of(set(self._waiting))

    async def _sweep(self) -> None:
        seen: set[str] = set()
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            # Only requests that were already waiting at the last sweep: the fresh ones get their publish.
            waiting = set(self._waiting)
            seen &= waiting
            try:
                if seen:
                    await self._collect_missed_of(seen)
            except Exception as exc:  # Redis away: the next sweep tries again
                log.debug("web chat reply sweep failed: %r", exc)
            seen = waiting

    async def _collect_missed_of(self, keys: set[str]) -> None:
        pending = [key for key in keys if key in self._waiting and not self._waiting[key].done()]
        if not pending:
            return
        for key, raw in zip(pending, await self.redis.mget([reply_key(key) for key in pending]), strict=True):
            future = self._waiting.get(key)
            if raw and future is not None and not future.done():
                log.info("web chat reply found by the sweep key=%s (its announcement was missed)", key)
                future.set_result(parse_reply(json.loads(raw)))

    def _deliver(self, data: object) -> None:
        try:
            reply = parse_reply(json.loads(data))  # type: ignore[arg-type]
        except Exception as exc:
            log.error("malformed web chat reply on %s: %r", REPLY_CHANNEL, exc)
            return
        future = self._waiting.get(reply.in_reply_to_key)
        if future is not None and not future.done():
            future.set_result(reply)
