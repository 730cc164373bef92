"""Web chat requests → Envelope."""

from __future__ import annotations

import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.shared.envelope import Envelope, Platform

__all__ = ["BOT_ID", "ChatRequest", "envelope_from_chat"]

BOT_ID = "webchat"


class ChatRequest(BaseModel):
    """Body of ``POST /api/chat``."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=200)
    text: str = Field(max_length=100_000)
    conversation_id: str | None = Field(default=None, min_length=1, max_length=200)
    message_id: str | None = Field(
        default=None, min_length=1, max_length=200, description="client id; a resend with the same id is one message"
    )
    user_name: str | None = Field(default=None, max_length=200)


def envelope_from_chat(request: ChatRequest, raw: dict[str, Any]) -> Envelope:
    # A web chat conversation belongs to one browser user, so it is private (a DM) by construction.
    conversation_id = request.conversation_id or f"dm-{request.user_id}"
    return Envelope(
        platform=Platform.WEBCHAT,
        bot_id=BOT_ID,
        conversation_id=conversation_id,
        message_id=request.message_id or uuid.uuid4().hex,
        author_id=request.user_id,
        author_name=request.user_name or request.user_id,
        is_direct=True,
        text=request.text,
        received_at=time.time(),
        raw=raw,
    )
