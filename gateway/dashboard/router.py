"""Serve ``/dashboard`` and its static files (no CDN, no network: charts are drawn as inline SVG).

The page itself holds no data, so it is served without a token; it asks for the admin token (or
takes ``?token=`` once and keeps it in sessionStorage) and every figure comes from ``/admin/...``,
which enforces the token.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

from gateway.shared.settings import Settings

__all__ = ["build_dashboard_router"]

_STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the ?token= of the first visit must not leak anywhere
    "Cache-Control": "no-store",
}


@cache
def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def build_dashboard_router(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["dashboard"])

    @router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(_asset("index.html"), headers=_SECURITY_HEADERS)

    @router.get("/dashboard/static/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in _STATIC:
            raise HTTPException(404, "no such file")
        return Response(_asset(name), media_type=_STATIC[name], headers=_SECURITY_HEADERS)

    return router
