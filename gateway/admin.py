"""The admin API under ``/admin/``: patches, blocks, analytics exports, summary and chart data.

Every route needs ``Authorization: Bearer $PATCHBAY_ADMIN_TOKEN`` (compared in constant time);
without it the answer is 401 with ``WWW-Authenticate: Bearer``. The CLI runs the same operations
(``gateway.limits.BlockList``, ``patches.control``, ``gateway.analytics``). Users are named by their
qualified key (``telegram:1001``, ``slack:<team>:U0456``); a bare id is refused (422) with the
qualified forms in the message. Forgetting is a worker's job (it owns memory and the caches): the
route sends the task and waits for its result (``gateway.shared.forgetting``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Literal

import redis
import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.background import BackgroundTask

from gateway.analytics.export import FORMATS, MEDIA_TYPES, ExportFormat, export
from gateway.analytics.store import open_engine
from gateway.analytics.summary import summary, timeseries
from gateway.analytics.timeparse import parse_time
from gateway.limits.blocks import BlockKind, BlockList
from gateway.limits.settings import LimitSettings
from gateway.shared.forgetting import request_forget
from gateway.shared.identity import parse_user_key
from gateway.shared.logs import register_secret
from gateway.shared.queue import producer
from gateway.shared.redis_urls import redis_py_url
from gateway.shared.settings import Settings
from gateway.shared.voice import VoicePreferences

__all__ = ["AdminResources", "AdminTokenMissing", "build_admin_router", "require_admin_token"]

log = logging.getLogger(__name__)


class AdminTokenMissing(RuntimeError):
    """A production run was asked to serve the admin API with no ``PATCHBAY_ADMIN_TOKEN``."""


def require_admin_token(settings: Settings, embedded: bool) -> str:
    """The admin token; an embedded (single-machine) run may generate one and print it, production may not."""
    if settings.admin_token:
        return settings.admin_token
    if not embedded:
        raise AdminTokenMissing(
            "PATCHBAY_ADMIN_TOKEN is not set: the admin API and dashboard will not start without it. "
            "Set it to a long random string, e.g. PATCHBAY_ADMIN_TOKEN=$(openssl rand -hex 24)."
        )
    token = secrets.token_urlsafe(24)
    register_secret(token)  # printed once for the operator, never logged
    print(f"admin token for this run (set PATCHBAY_ADMIN_TOKEN to keep one): {token}", file=sys.stderr)
    return token


class AdminResources:
    """Connections the admin routes share, opened on first use; ``aclose`` on shutdown."""

    def __init__(self, settings: Settings) -> None:
        url = redis_py_url(settings.effective_redis_url)
        self.redis = aioredis.Redis.from_url(url)
        self.sync_redis = redis.Redis.from_url(url)  # patches.control is sync (operator commands)
        self.blocks = BlockList(self.redis, LimitSettings().key_prefix)
        self.celery = producer(settings)  # sends the forget task by name, as admission sends messages
        self._database_url = settings.sqlalchemy_url
        self._engine: AsyncEngine | None = None
        self._lock = asyncio.Lock()

    async def engine(self) -> AsyncEngine:
        async with self._lock:
            if self._engine is None:
                self._engine = await open_engine(self._database_url)
            return self._engine

    async def aclose(self) -> None:
        await self.redis.aclose()
        self.sync_redis.close()
        self.celery.close()
        if self._engine is not None:
            await self._engine.dispose()


class RolloutBody(BaseModel):
    percent: float = Field(ge=0, le=100)


class BlockBody(BaseModel):
    kind: Literal["user", "conversation"]
    id: str = Field(min_length=3, description="<platform>:<id>, e.g. discord:81234")
    reason: str = ""


# Module level: with postponed annotations FastAPI resolves these names in the module's globals.
_BEARER = HTTPBearer(auto_error=False)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]
Since = Annotated[str | None, Query(description="ISO time, epoch s, or an age like 24h")]
Buckets = Annotated[int, Query(ge=1, le=500)]
Format = Annotated[ExportFormat, Query(description=" | ".join(FORMATS))]


def _bearer_check(token: str) -> Any:
    expected = token.encode()

    def check(credentials: Credentials) -> None:
        given = credentials.credentials.encode() if credentials else b""
        if not secrets.compare_digest(given, expected):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "a valid admin bearer token is required", {"WWW-Authenticate": "Bearer"}
            )

    return check


def _time(value: str | None) -> float | None:
    try:
        return parse_time(value)
    except ValueError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None


def _patch_operation(operation: str, resources: AdminResources, name: str, *args: Any) -> dict[str, Any]:
    from patches import control  # lazily: the patch framework is optional for this module

    try:
        getattr(control, operation)(resources.sync_redis, name, *args)
    except control.UnknownPatchError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    log.warning("admin: patch %s %s %s", name, operation, " ".join(map(str, args)))
    # A patch switched before any worker published it is not listed yet: say what was done.
    listed = [asdict(s) for s in control.list_patches(resources.sync_redis) if s.name == name]
    return listed[0] if listed else {"name": name, "operation": operation, "published": False}


def build_admin_router(settings: Settings, resources: AdminResources | None = None) -> APIRouter:
    """Routes under ``/admin``; raises AdminTokenMissing when ``settings.admin_token`` is unset."""
    if not settings.admin_token:
        raise AdminTokenMissing("build_admin_router needs settings.admin_token (see require_admin_token)")
    shared = resources or AdminResources(settings)
    router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(_bearer_check(settings.admin_token))])

    @router.get("/patches")
    def list_patches() -> list[dict[str, Any]]:
        from patches import control

        return [asdict(s) for s in control.list_patches(shared.sync_redis)]

    @router.get("/patches/stacks")
    def list_patch_stacks() -> dict[str, list[str]]:
        """Each kind's stack, from the top patch down to the base, as a worker last built it."""
        from patches import control

        return control.list_stacks(shared.sync_redis)

    @router.post("/patches/{name}/enable")
    def enable_patch(name: str) -> dict[str, Any]:
        return _patch_operation("enable", shared, name)

    @router.post("/patches/{name}/disable")
    def disable_patch(name: str) -> dict[str, Any]:
        return _patch_operation("disable", shared, name)

    @router.post("/patches/{name}/rollout")
    def rollout_patch(name: str, body: RolloutBody) -> dict[str, Any]:
        return _patch_operation("rollout", shared, name, body.percent)

    @router.get("/blocks")
    async def list_blocks() -> list[dict[str, object]]:
        return [entry.to_json() for entry in await shared.blocks.list_blocks()]

    @router.post("/blocks", status_code=status.HTTP_201_CREATED)
    async def add_block(body: BlockBody) -> dict[str, object]:
        try:
            entry = await shared.blocks.block(body.kind, body.id, body.reason)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        log.warning("admin: blocked %s %s (%s)", body.kind, body.id, body.reason)
        return entry.to_json()

    @router.delete("/blocks/{kind}/{ident}")
    async def remove_block(kind: BlockKind, ident: str) -> dict[str, str]:
        try:
            removed = await shared.blocks.unblock(kind, ident)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        if not removed:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{kind} {ident} is not blocked")
        log.warning("admin: unblocked %s %s", kind, ident)
        return {"unblocked": ident}

    @router.delete("/users/{user_id}/memory")
    async def forget_user_memory(user_id: str) -> dict[str, Any]:
        """Forget a user completely: memory, emotional state, voice choice, cached replies, LLM cache; AOF rewritten."""
        try:
            user_key = parse_user_key(user_id)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        log.warning("admin: forgetting user %s", user_key)
        done = await request_forget(shared.celery, shared.redis, user_key, settings.forget_timeout_s)
        if done is None:
            raise HTTPException(
                status.HTTP_504_GATEWAY_TIMEOUT,
                f"no worker finished forgetting {user_key} within {settings.forget_timeout_s:.0f}s; "
                "the request stays queued and runs when a worker takes it",
            )
        return done.to_json()

    @router.put("/voice/conversations/{conversation_key:path}")
    async def set_conversation_voice(conversation_key: str, body: dict[str, Any]) -> dict[str, Any]:
        """Operator switch: spoken replies for everyone in one conversation (``platform:bot:conversation``)."""
        enabled = body.get("enabled")
        if not isinstance(enabled, bool):
            raise HTTPException(422, 'send {"enabled": true|false}')
        await VoicePreferences(shared.redis).set_conversation(conversation_key, enabled)
        return {"conversation_key": conversation_key, "voice": enabled}

    @router.get("/summary")
    async def get_summary(since: Since = None, until: Since = None) -> dict[str, Any]:
        return await summary(await shared.engine(), _time(since), _time(until))

    @router.get("/timeseries")
    async def get_timeseries(since: Since = None, until: Since = None, buckets: Buckets = 24) -> dict[str, Any]:
        return await timeseries(await shared.engine(), _time(since), _time(until), buckets)

    @router.get("/export")
    async def get_export(
        format: Format,
        since: Since = None,
        until: Since = None,
    ) -> StreamingResponse:
        workdir = Path(tempfile.mkdtemp(prefix="patchbay-export-"))
        path = workdir / f"patchbay-events.{format}"
        try:
            await export(await shared.engine(), format, _time(since), _time(until), path)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        return StreamingResponse(
            _chunks(path),
            media_type=MEDIA_TYPES[format],
            headers={"Content-Disposition": f'attachment; filename="{path.name}"'},
            background=BackgroundTask(shutil.rmtree, workdir, ignore_errors=True),
        )

    return router


async def _chunks(path: Path, size: int = 1 << 20) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, size):
            yield chunk
