"""Concurrent calls of one Lua script, sent to Redis together: one pipeline write for a batch.

Admission calls the guard once per message, many messages at a time. Each call on its own pays
redis-py's per-command machinery (a pooled connection, a socket write, a read and its wake-up),
which is most of a decision's CPU in the gateway (bench/ratelimit.py). Here a call made while no
batch is in flight is sent at once, alone; calls that arrive while one is in flight wait for it
and go together in the next, as one non-transactional pipeline. No timer: a lone call waits for
nothing. Every call is still its own EVALSHA, atomic on its own and answered on its own; a call
cancelled before its batch is sent is not sent (it spends no budget).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

__all__ = ["ScriptBatcher"]

_Call = tuple[Sequence[Any], Sequence[Any], "asyncio.Future[Any]"]


class ScriptBatcher:
    def __init__(self, redis: aioredis.Redis, script: str, *, max_batch: int = 256) -> None:
        self._redis = redis
        self._script = redis.register_script(script)
        self._max_batch = max_batch
        self._pending: list[_Call] = []
        self._runner: asyncio.Task[None] | None = None

    async def __call__(self, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        loop = asyncio.get_running_loop()
        runner = self._runner
        if self._max_batch == 1 or (runner is not None and not runner.done() and runner.get_loop() is not loop):
            return await self._script(keys=keys, args=args)  # no batching, or another event loop's batches: alone
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((keys, args, future))
        if runner is None or runner.done():
            self._runner = loop.create_task(self._run(), name="redis-script-batches")
        return await future

    async def _run(self) -> None:
        while self._pending:
            batch = [call for call in self._pending[: self._max_batch] if not call[2].done()]
            del self._pending[: self._max_batch]
            if not batch:
                continue
            try:
                results = await self._send(batch)
            except Exception as exc:  # every waiter gets the failure; none waits forever
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, _, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _send(self, batch: list[_Call]) -> list[Any]:
        if len(batch) == 1:
            keys, args, _ = batch[0]
            return [await self._script(keys=keys, args=args)]  # loads the script itself if Redis lost it
        results = await self._pipeline(batch)
        missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if missing:  # Redis restarted or flushed its scripts: load it, send again only those that did not run
            await self._redis.script_load(self._script.script)
            for i, result in zip(missing, await self._pipeline([batch[i] for i in missing]), strict=True):
                results[i] = result
        return results

    async def _pipeline(self, batch: list[_Call]) -> list[Any]:
        sha = self._script.sha
        async with self._redis.pipeline(transaction=False) as pipe:
            for keys, args, _ in batch:
                pipe.evalsha(sha, len(keys), *keys, *args)
            return list(await pipe.execute(raise_on_error=False))
