"""The gateway's HTTP app: web chat, platform webhooks, health, metrics, admin and dashboard.

``create_app`` wires the parts explicitly, Starlette-style: each router is built by the package
that owns it and mounted here; the lifespan starts and stops what runs beside the server
(the reply subscription, the platform connections, the analytics writer). Every request first
passes the edge (``gateway.edge``, docs/security.md): the trusted-proxy rewrite of the client
address, security headers, and the body size and JSON depth limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from adapters.base import AdmitResult, Rating
from adapters.registry import platform_health, platform_routers
from adapters.webchat.identity import Identities
from adapters.webchat.live_hub import LiveHub
from adapters.webchat.replies import ReplyWaiter
from adapters.webchat.routes import build_webchat_router
from adapters.webchat.uploads import UPLOAD_PATH, UploadPolicy
from gateway.admission import Admitter
from gateway.edge import BodyLimits, SecurityHeaders
from gateway.limits import Guard
from gateway.limits.clients import ClientLimiter
from gateway.limits.pressure import MemoryPressure
from gateway.shared.envelope import Envelope
from gateway.shared.events import emit_event
from gateway.shared.identity import user_key
from gateway.shared.keys import WORKER_HEARTBEAT_PREFIX
from gateway.shared.logs import redact, register_secret
from gateway.shared.queue import producer
from gateway.shared.redis_urls import redis_client, redis_py_url
from gateway.shared.settings import Settings
from gateway.spool import Spool

__all__ = ["GatewayState", "create_app"]

log = logging.getLogger(__name__)


@dataclass
class GatewayState:
    settings: Settings
    redis: Redis
    admitter: Admitter
    waiter: ReplyWaiter
    database: AsyncEngine
    pressure: MemoryPressure | None = None
    background: list[Any] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def admit(self, envelope: Envelope, *, spool: bool = False) -> AdmitResult:
        return await self.admitter.admit(envelope, spool=spool)

    async def rate(self, rating: Rating) -> None:
        """A 👍/👎 on one of the bot's replies: a satisfaction event, linked to the reply by its platform id."""
        await emit_event(
            self.redis,
            {
                "kind": "reaction",
                "platform": rating.platform,
                "reply_id": rating.reply_id,
                "user_id": user_key(rating.platform, rating.workspace, rating.user_id),
                "value": rating.value,
                "ts": time.time(),
            },
        )


def create_app(settings: Settings | None = None, *, embedded: bool = False) -> FastAPI:
    settings = settings or Settings()
    settings.check()
    secret = settings.session_secret()
    register_secret(secret.decode(errors="replace"), *settings.webchat_api_keys, settings.metrics_token)
    redis = redis_client(settings.effective_redis_url, max_connections=1024)
    pressure = MemoryPressure(redis, high_water=settings.redis_high_water)
    spool = Spool(settings.data_dir / "spool")
    admitter = Admitter(redis, producer(settings), guard=Guard(redis), pressure=pressure, spool=spool)
    waiter = ReplyWaiter(redis)
    live = LiveHub(redis)  # streamed web chat replies (POST /api/chat/stream)
    state = GatewayState(
        settings=settings,
        redis=redis,
        admitter=admitter,
        waiter=waiter,
        database=create_async_engine(settings.sqlalchemy_url, pool_pre_ping=True),
        pressure=pressure,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await waiter.start()
        await live.start()
        await _start_side_tasks(state)
        url = f"http://{settings.http_host}:{settings.http_port}"
        log.info("gateway listening on %s", url)
        if embedded:
            print(f"\nPatchbay is running: open {url}/ to chat, {url}/dashboard for analytics. Ctrl-C stops it.\n")
        try:
            yield
        finally:
            await _stop_side_tasks(state)
            await live.stop()
            await waiter.stop()
            await redis.aclose()
            await state.database.dispose()

    _register_cluster_metrics(settings)
    app = FastAPI(title="Patchbay gateway", lifespan=lifespan, docs_url="/api/docs", redoc_url=None)
    app.state.gateway = state

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return JSONResponse({"error": "invalid_request", "detail": problems}, status_code=422)

    identities = Identities(secret, settings.webchat_api_keys, settings.session_cookie_secure)
    app.include_router(
        build_webchat_router(
            state.admit,
            waiter,
            settings.reply_timeout_s,
            identities=identities,
            limits=ClientLimiter(redis),
            uploads=UploadPolicy(settings.webchat_max_image_bytes, settings.webchat_upload_ttl_s),
            live=live,
        )
    )
    for router in platform_routers():
        app.include_router(router)
    for router in _operator_routers(settings, embedded):
        app.include_router(router)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        report = await _health(state)
        return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)

    metrics_token = (settings.metrics_token or "").encode()

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if metrics_token:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip().encode()
            if not hmac.compare_digest(given, metrics_token):
                return Response("a metrics bearer token is required\n", 401, {"WWW-Authenticate": "Bearer"})
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # Outermost last: the client address is settled first, headers go on every answer, limits guard the rest.
    app.add_middleware(
        BodyLimits,
        max_bytes=settings.max_body_bytes,
        max_depth=settings.max_json_depth,
        path_limits={UPLOAD_PATH: settings.webchat_max_image_bytes},
    )
    app.add_middleware(SecurityHeaders)
    trusted = [host.strip() for host in settings.trusted_proxies.split(",") if host.strip()]
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=trusted)  # type: ignore[arg-type]
    return app


async def _health(state: GatewayState) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    try:
        await state.redis.ping()
        checks["redis"] = {"ok": True}
    except Exception as exc:
        checks["redis"] = {"ok": False, "error": redact(repr(exc))}
    try:
        async with state.database.connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:
        checks["database"] = {"ok": False, "error": redact(repr(exc))}
    workers: list[str] = []
    if checks["redis"]["ok"]:
        async for key in state.redis.scan_iter(match=WORKER_HEARTBEAT_PREFIX + "*", count=100):
            workers.append(key.decode().removeprefix(WORKER_HEARTBEAT_PREFIX))
    checks["workers"] = {"ok": bool(workers), "seen": sorted(workers)}
    # Messages recorded but not yet answered, and those waiting on this gateway's disk for Redis.
    checks["messages"] = {"ok": True, "spooled": state.admitter.spool.depth if state.admitter.spool else 0}
    if checks["redis"]["ok"]:
        with contextlib.suppress(Exception):
            checks["messages"]["open"] = (await state.admitter.ledger.stats()).open
    platforms = platform_health()
    # /healthz is public: a detail never carries a secret, whatever a library put in its error message.
    checks["platforms"] = {
        name: {"state": str(health.state), "detail": redact(health.detail)} for name, health in platforms.items()
    }
    healthy = all(checks[name]["ok"] for name in ("redis", "database", "workers"))
    return {"status": "ok" if healthy else "degraded", "time": time.time(), "checks": checks}


_cluster_metrics_registered = False


def _register_cluster_metrics(settings: Settings) -> None:
    """Workers are other processes: /metrics shows their per-patch totals as aggregated in Redis."""
    global _cluster_metrics_registered
    if not _cluster_metrics_registered:
        from prometheus_client import REGISTRY

        from patches.metrics import RedisPatchStatsCollector

        REGISTRY.register(RedisPatchStatsCollector(redis_py_url(settings.effective_redis_url)))
        _cluster_metrics_registered = True


def _operator_routers(settings: Settings, embedded: bool) -> list[Any]:
    from gateway.admin import build_admin_router, require_admin_token
    from gateway.dashboard import build_dashboard_router

    # A production gateway refuses to start without a token; an embedded run makes one up and prints it.
    token = require_admin_token(settings, embedded)
    settings = settings.model_copy(update={"admin_token": token})
    return [build_admin_router(settings), build_dashboard_router(settings)]


async def _start_side_tasks(state: GatewayState) -> None:
    from adapters.registry import start_platforms
    from gateway.analytics.writer import AnalyticsWriter

    writer = AnalyticsWriter.from_settings(state.settings)
    writer.start()
    state.background.append(writer)
    if state.admitter.spool is not None:
        state.tasks.append(asyncio.create_task(state.admitter.spool.drain(state.admitter.admit_now), name="spool"))
    if state.pressure is not None:
        state.pressure.start()
        state.background.append(state.pressure)
    await start_platforms(state.admit, state.rate)


async def _stop_side_tasks(state: GatewayState) -> None:
    from adapters.registry import stop_platforms

    await stop_platforms()
    for task in state.tasks:
        task.cancel()
    await asyncio.gather(*state.tasks, return_exceptions=True)
    for writer in state.background:
        await writer.stop()
