"""``POST /slack/events``: the Events API, with the signature verified before anything is parsed.

slack-bolt parses a body before it checks the signature, so an unsigned non-JSON body used to end
in a 500 and a traceback. Here the order is fixed and every answer is deliberate:

- no valid ``X-Slack-Signature`` for this body and timestamp (or a timestamp older than five
  minutes) → **401**, nothing parsed;
- a correctly signed body that is not a JSON object, or an event whose fields have the wrong types
  → **400**, counted as ``rejected`` and logged with the reason (Slack does not retry a 4xx);
- everything else goes to slack-bolt, which answers ``url_verification`` and acknowledges events.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_sdk.signature import SignatureVerifier

from adapters.rejections import record_rejection
from adapters.slack.adapter import SlackAdapter
from adapters.slack.normalise import event_problem

__all__ = ["build_router"]

log = logging.getLogger(__name__)


def _json_problem(body: bytes, content_type: str) -> tuple[Any, str | None]:
    if content_type.startswith("application/x-www-form-urlencoded"):
        return None, None  # interactive payloads: slack-bolt parses them (we subscribe to none)
    try:
        data = json.loads(body)
    except ValueError:
        return None, "the body is not JSON"
    if not isinstance(data, dict):
        return None, f"the body must be a JSON object, not {type(data).__name__}"
    if data.get("type") == "event_callback":
        event = data.get("event")
        if not isinstance(event, dict):
            return data, "event_callback without an event object"
        return data, event_problem(event)
    return data, None


def build_router(adapter: SlackAdapter) -> APIRouter:
    router = APIRouter()
    handler = AsyncSlackRequestHandler(adapter.app)
    verifier = SignatureVerifier(adapter.settings.signing_secret or "")

    @router.post("/slack/events")
    async def slack_events(request: Request) -> Response:
        body = await request.body()
        if not adapter.settings.signing_secret or not verifier.is_valid_request(body, dict(request.headers)):
            adapter.counters["unsigned"] = adapter.counters.get("unsigned", 0) + 1
            return Response('{"error":"invalid_signature"}', status_code=401, media_type="application/json")
        _, problem = _json_problem(body, request.headers.get("content-type", ""))
        if problem is not None:
            record_rejection("slack", adapter.counters, problem)
            return Response('{"error":"invalid_event"}', status_code=400, media_type="application/json")
        if request.headers.get("X-Slack-Retry-Num"):
            # Counted only; the retry is processed like the first delivery and carries the same
            # message id, so the gateway's dedupe turns it into nothing.
            adapter.counters["retries_seen"] += 1
        return await handler.handle(request)

    return router
