"""Shared pieces of the adapter tests: a recording ``admit``, polling, and a real HTTP server for routers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import uvicorn
from fastapi import APIRouter, FastAPI

from adapters.base import Admission, AdmitResult
from gateway.shared.envelope import Envelope


class RecordingAdmit:
    """The gateway's admission, reduced to: remember the envelope, say QUEUED (or a scripted result)."""

    def __init__(self, result: AdmitResult | None = None) -> None:
        self.envelopes: list[Envelope] = []
        self.spooled: list[bool] = []  # what each call asked for: may an outage spool it?
        self.result = result or AdmitResult(Admission.QUEUED)

    async def __call__(self, envelope: Envelope, *, spool: bool = False) -> AdmitResult:
        self.envelopes.append(envelope)
        self.spooled.append(spool)
        return self.result


async def eventually(check: Callable[[], bool], within_s: float = 30.0, what: str = "condition") -> None:
    """Poll ``check`` until it holds; generous deadline, fails the test with ``what`` otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serve_routers(*routers: APIRouter, port: int | None = None) -> AsyncIterator[str]:
    """Mount ``routers`` in a small FastAPI app served by uvicorn on a free port; yields its base URL."""
    app = FastAPI()
    for router in routers:
        app.include_router(router)
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, what="uvicorn to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
