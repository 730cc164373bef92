"""HTTP surface of the web chat: the page, ``POST /api/chat`` and ``POST /api/rating``."""

from __future__ import annotations

import time
from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from adapters.base import Admission, Admit
from adapters.webchat.inbound import ChatRequest, envelope_from_chat
from adapters.webchat.replies import ReplyWaiter
from gateway.shared.envelope import EnvelopeError, Reply
from gateway.shared.events import emit_event

__all__ = ["build_webchat_router"]

_STATUS = {
    Admission.RATE_LIMITED: 429,
    Admission.BLOCKED: 403,
    Admission.REJECTED: 400,
    Admission.UNAVAILABLE: 503,  # nothing was stored: the client should send the same message id again
}


def _reply_body(reply: Reply, message_id: str, conversation_id: str) -> dict[str, Any]:
    return {
        "text": reply.text,
        "conversation_id": conversation_id,
        "message_id": message_id,
        "reason": reply.reason,
        "attachments": [
            {
                "mime_type": item.mime_type,
                "is_voice": item.is_voice,
                "duration_s": item.duration_s,
                "url": item.url or f"data:{item.mime_type};base64,{item.data_b64}",
            }
            for item in reply.attachments
        ],
    }


def build_webchat_router(admit: Admit, waiter: ReplyWaiter, reply_timeout_s: float) -> APIRouter:
    router = APIRouter()
    page = resources.files("adapters.webchat").joinpath("static/index.html").read_text(encoding="utf-8")

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def chat_page() -> str:
        return page

    @router.post("/api/chat")
    async def chat(body: ChatRequest, request: Request) -> JSONResponse:
        try:
            envelope = envelope_from_chat(body, raw=body.model_dump())
        except (EnvelopeError, ValueError) as exc:
            return JSONResponse({"error": "invalid_message", "detail": str(exc)}, status_code=422)
        key = envelope.dedupe_key
        waiter.expect(key)  # before admission, so an instant reply cannot slip past us
        result = await admit(envelope)
        if result.decision not in (Admission.QUEUED, Admission.DUPLICATE):
            waiter.forget(key)
            return JSONResponse(
                {
                    "error": str(result.decision),
                    "detail": result.reason,
                    "notice": result.notice,
                    "message_id": envelope.message_id,
                },
                status_code=_STATUS.get(result.decision, 400),
                headers={"Retry-After": "2"} if result.decision is Admission.UNAVAILABLE else None,
            )
        reply = await waiter.wait(key, reply_timeout_s)
        if reply is None:
            return JSONResponse(
                {
                    "error": "timeout",
                    "detail": f"no reply within {reply_timeout_s:.0f}s; the message is queued and will be answered",
                    "message_id": envelope.message_id,
                    "conversation_id": envelope.conversation_id,
                },
                status_code=504,
            )
        return JSONResponse(_reply_body(reply, envelope.message_id, envelope.conversation_id))

    @router.get("/api/chat/{conversation_id}/{message_id}")
    async def fetch_reply(conversation_id: str, message_id: str) -> JSONResponse:
        """Poll for a reply after a 504."""
        key = f"webchat:webchat:{conversation_id}:{message_id}"
        reply = await waiter.fetch(key)
        if reply is None:
            return JSONResponse({"error": "pending", "message_id": message_id}, status_code=404)
        return JSONResponse(_reply_body(reply, message_id, conversation_id))

    @router.post("/api/rating")
    async def rate(body: dict[str, Any]) -> JSONResponse:
        """👍/👎 on a reply: satisfaction analytics."""
        value = body.get("value")
        message_id, user_id = body.get("message_id"), body.get("user_id")
        conversation_id = body.get("conversation_id") or f"dm-{user_id}"
        if value not in (1, -1) or not isinstance(message_id, str) or not isinstance(user_id, str):
            return JSONResponse(
                {"error": "invalid_rating", "detail": "need message_id, user_id and value 1 or -1"}, status_code=422
            )
        await emit_event(
            waiter.redis,
            {
                "kind": "reaction",
                "platform": "webchat",
                "key": f"webchat:webchat:{conversation_id}:{message_id}",
                "user_id": user_id,
                "value": value,
                "ts": time.time(),
            },
        )
        return JSONResponse({"ok": True})

    return router
