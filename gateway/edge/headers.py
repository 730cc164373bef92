"""Security headers on every response; a strict Content-Security-Policy on every page.

The web chat and the dashboard load only their own scripts and styles (no inline script, no CDN),
so the policy can be strict: ``script-src 'self'``, no plugins, no ``<base>`` tricks, and
``frame-ancestors 'none'`` — neither page may be framed by another site (clickjacking). Audio
replies are ``data:`` URLs, hence ``media-src data:``. ``nosniff`` on everything keeps a browser from
running a JSON answer as a script. A route that sets its own policy keeps it.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["PAGE_POLICY", "SecurityHeaders"]

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# The interactive API docs load Swagger UI from its CDN: only framing is forbidden there.
_DOCS_POLICY = "frame-ancestors 'none'"


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, docs_prefix: str = "/api/docs") -> None:
        self.app = app
        self.docs_prefix = docs_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = str(scope.get("path", "")).startswith(self.docs_prefix)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", _DOCS_POLICY if docs else PAGE_POLICY)
                    headers.setdefault("X-Frame-Options", "DENY")
            await send(message)

        await self.app(scope, receive, with_headers)
