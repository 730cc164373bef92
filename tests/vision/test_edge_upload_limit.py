"""The edge's per-route body limit: the upload route takes more than the others, and only it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.edge.body import BodyLimits


async def _size(request: Request) -> JSONResponse:
    return JSONResponse({"bytes": len(await request.body())})


def _client() -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/api/upload", _size, methods=["POST"]), Route("/api/chat", _size, methods=["POST"])])
    limited = BodyLimits(app, max_bytes=1000, max_depth=8, path_limits={"/api/upload": 5000})
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=limited), base_url="http://edge")


async def test_the_upload_route_has_its_own_limit_and_the_others_keep_theirs() -> None:
    async with _client() as client:
        assert (await client.post("/api/upload", content=b"x" * 4000)).json() == {"bytes": 4000}
        assert (await client.post("/api/upload", content=b"x" * 5001)).status_code == 413
        assert (await client.post("/api/chat", content=b"x" * 1001)).status_code == 413
        assert (await client.post("/api/chat", content=b"x" * 1000)).json() == {"bytes": 1000}


async def test_a_chunked_upload_is_cut_off_at_its_limit() -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(6):
            yield b"x" * 1000

    async with _client() as client:
        response = await client.post("/api/upload", content=body())
        assert response.status_code == 413 and "5,000 bytes" in response.json()["detail"]
