"""A small FastAPI app with the admin and dashboard routers, served by uvicorn on a free 127.0.0.1 port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from gateway.admin import AdminResources, build_admin_router
from gateway.dashboard import build_dashboard_router
from gateway.shared.settings import Settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def build_app(settings: Settings) -> tuple[FastAPI, AdminResources]:
    resources = AdminResources(settings)
    app = FastAPI()
    app.include_router(build_admin_router(settings, resources))
    app.include_router(build_dashboard_router(settings))
    return app, resources


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[str]:
    """Run the app in this event loop; yields its base URL."""
    app, resources = build_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        await resources.aclose()
