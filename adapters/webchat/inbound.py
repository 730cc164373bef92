"""Web chat requests → Envelope. The request is validated here; who sends it is decided by ``identity``.

Bad input is refused with a clear 422 rather than repaired: an id or a display name with a control
character, text with NUL or another control character, an unpaired surrogate (valid JSON, not
storable text), or a message with nothing in it: empty or whitespace-only text is refused unless
the message carries images (``images``: ids of the caller's uploads, ``adapters.webchat.uploads``).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.shared.envelope import Attachment, Envelope, Platform
from gateway.shared.hygiene import control_characters, has_unpaired_surrogate

__all__ = ["BOT_ID", "ChatRequest", "RatingRequest", "envelope_from_chat"]

BOT_ID = "webchat"
_TEXT_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


def _plain(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if bad := control_characters(value):
        raise ValueError(f"{what} may not contain control characters ({', '.join(bad)})")
    if has_unpaired_surrogate(value):
        raise ValueError(f"{what} contains an unpaired UTF-16 surrogate")
    return value


class ChatRequest(BaseModel):
    """Body of ``POST /api/chat``. ``user_id`` only with an API key; a browser session is its own user."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=100_000)
    user_id: str | None = Field(default=None, min_length=1, max_length=200)
    conversation_id: str | None = Field(default=None, min_length=1, max_length=200)
    message_id: str | None = Field(
        default=None, min_length=1, max_length=200, description="client id; a resend with the same id is one message"
    )
    user_name: str | None = Field(default=None, max_length=200)
    images: list[str] = Field(
        default_factory=list, max_length=4, description="ids from POST /api/upload (the caller's own, not expired)"
    )

    @field_validator("images")
    @classmethod
    def _upload_ids(cls, value: list[str]) -> list[str]:
        if any(not _UPLOAD_ID.fullmatch(item) for item in value):
            raise ValueError("an image id is what POST /api/upload answered: letters, digits, - and _")
        if len(set(value)) != len(value):
            raise ValueError("the same image is named twice")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> ChatRequest:
        if not self.text.strip() and not self.images:
            raise ValueError("text is empty: send something to answer")
        return self

    timezone: str | None = Field(
        default=None, pattern=r"^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$", description="the browser's IANA time zone"
    )

    @field_validator("user_id", "conversation_id", "message_id", "user_name")
    @classmethod
    def _no_controls(cls, value: str | None) -> str | None:
        return _plain(value, "the value")

    @field_validator("text")
    @classmethod
    def _storable_text(cls, value: str) -> str:
        if _TEXT_CONTROLS.search(value):
            raise ValueError("text may not contain NUL or other control characters (tab and newline are fine)")
        if has_unpaired_surrogate(value):
            raise ValueError("text contains an unpaired UTF-16 surrogate")
        return value


class RatingRequest(BaseModel):
    """Body of ``POST /api/rating``: 👍 (1) or 👎 (-1) on one of the bot's replies to the caller."""

    model_config = ConfigDict(extra="forbid")

    message_id: str = Field(min_length=1, max_length=200)
    value: Literal[1, -1]
    user_id: str | None = Field(default=None, min_length=1, max_length=200)
    conversation_id: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("message_id", "user_id", "conversation_id")
    @classmethod
    def _no_controls(cls, value: str | None) -> str | None:
        return _plain(value, "the value")


def envelope_from_chat(
    request: ChatRequest,
    *,
    user_id: str,
    conversation_id: str,
    raw: dict[str, Any] | None = None,
    images: list[tuple[str, str, int]] | None = None,
) -> Envelope:
    """The envelope of a request whose caller (``user_id``) and conversation were already established.

    ``images`` are the request's uploads as ``uploads.known_uploads`` found them (id, type, size): the
    envelope names them by id, the worker reads the bytes from Redis.
    """
    # A web chat conversation belongs to one user, so it is private (a DM) by construction.
    return Envelope(
        platform=Platform.WEBCHAT,
        bot_id=BOT_ID,
        conversation_id=conversation_id,
        message_id=request.message_id or uuid.uuid4().hex,
        author_id=user_id,
        author_name=request.user_name or "",
        is_direct=True,
        text=request.text,
        attachments=[
            Attachment(file_id=upload_id, mime_type=mime, size=size) for upload_id, mime, size in images or []
        ],
        received_at=time.time(),
        # The reply path indexes the stored reply by its user (forgetting finds it); the time zone is for
        # the current_time tool (docs/tools.md).
        hints={"user": user_id, **({"timezone": request.timezone} if request.timezone else {})},
        raw=raw or {},
    )
