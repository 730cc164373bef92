"""``POST /slack/events``: the Events API, verified by slack-bolt (signature, timestamp, url_verification)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler

from adapters.slack.adapter import SlackAdapter

__all__ = ["build_router"]


def build_router(adapter: SlackAdapter) -> APIRouter:
    router = APIRouter()
    handler = AsyncSlackRequestHandler(adapter.app)

    @router.post("/slack/events")
    async def slack_events(request: Request) -> Response:
        if request.headers.get("X-Slack-Retry-Num"):
            # Counted only; the retry is processed like the first delivery and carries the same
            # message id, so the gateway's dedupe turns it into nothing.
            adapter.counters["retries_seen"] += 1
        return await handler.handle(request)

    return router
