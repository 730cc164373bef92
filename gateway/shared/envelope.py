"""The unified envelope: one typed, versioned, JSON-only shape for every message in and every reply out.

Adapters build an ``Envelope`` from a platform event and nothing else; workers read it and
produce a ``Reply``; egress hands the ``Reply`` back to the platform it came from. Both cross
the Celery queue as JSON (never pickle), so everything here must round-trip through
``model_dump(mode="json")`` / ``model_validate``.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.shared.hygiene import clean_display_name, clean_text, control_characters
from gateway.shared.identity import user_key

SCHEMA_VERSION: Final = 1

__all__ = [
    "SCHEMA_VERSION",
    "Attachment",
    "Envelope",
    "EnvelopeError",
    "Platform",
    "Reply",
    "parse_envelope",
    "parse_reply",
]


class Platform(StrEnum):
    WEBCHAT = "webchat"
    DISCORD = "discord"
    TELEGRAM = "telegram"
    SLACK = "slack"


class EnvelopeError(ValueError):
    """A message that is not a valid envelope; ``str()`` says which field and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class Attachment(_Strict):
    """A file that came with a message, or that a reply carries.

    Inbound attachments point at the platform (``url``) or name the platform's file (``file_id``,
    on Telegram, whose download URLs contain the bot token: the worker resolves the id at download
    time, so no token ever travels in an envelope); outbound ones usually carry their bytes
    (``data_b64``) because the worker made them (voice audio) and no URL exists yet.
    """

    url: str | None = None
    file_id: str | None = Field(default=None, description="the platform's file id, resolved by the worker")
    mime_type: str = "application/octet-stream"
    size: int | None = Field(default=None, ge=0)
    filename: str | None = None
    data_b64: str | None = None
    duration_s: float | None = Field(default=None, ge=0)
    is_voice: bool = False

    @model_validator(mode="after")
    def _has_content(self) -> Attachment:
        if self.url is None and self.data_b64 is None and self.file_id is None:
            raise ValueError("an attachment needs a url, a file_id or data_b64")
        return self

    @classmethod
    def from_bytes(cls, data: bytes, mime_type: str, **kwargs: Any) -> Attachment:
        return cls(data_b64=base64.b64encode(data).decode("ascii"), mime_type=mime_type, size=len(data), **kwargs)

    def data(self) -> bytes:
        if self.data_b64 is None:
            raise ValueError("this attachment has no inline data")
        return base64.b64decode(self.data_b64)


class Envelope(_Strict):
    """One inbound message, normalised. ``raw`` keeps the platform payload aside for debugging only."""

    schema_version: Literal[1] = SCHEMA_VERSION
    platform: Platform
    bot_id: str = Field(min_length=1, description="bot user id, or the workspace/team id on Slack")
    conversation_id: str = Field(min_length=1)
    thread_id: str | None = None
    message_id: str = Field(min_length=1)
    author_id: str = Field(min_length=1)
    author_name: str = ""
    is_direct: bool = False
    text: str = ""
    mentions: list[str] = Field(default_factory=list)
    attachments: list[Attachment] = Field(default_factory=list)
    voice: Attachment | None = None
    reply_to: str | None = None
    timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))
    received_at: float | None = Field(default=None, description="gateway ingress time, epoch seconds")
    hints: dict[str, Any] = Field(default_factory=dict, description="adapter data the reply path needs")
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    @field_validator("bot_id", "conversation_id", "thread_id", "message_id", "author_id", "reply_to")
    @classmethod
    def _plain_id(cls, value: str | None) -> str | None:
        # Ids end up in Redis keys, log lines and prompts: a control character in one is never legitimate.
        if value is not None and (bad := control_characters(value)):
            raise ValueError(f"an id may not contain control characters ({', '.join(bad)})")
        return value

    @field_validator("author_name")
    @classmethod
    def _one_line_name(cls, value: str) -> str:
        return clean_display_name(value)

    @field_validator("text")
    @classmethod
    def _storable_text(cls, value: str) -> str:
        return clean_text(value)

    @property
    def user_key(self) -> str:
        """The platform-qualified author (``telegram:1001``, ``slack:<team>:U11``): see ``gateway.shared.identity``."""
        return user_key(self.platform, self.bot_id, self.author_id)

    @property
    def dedupe_key(self) -> str:
        """Identity of this message across redeliveries: the same platform message is one message."""
        return f"{self.platform}:{self.bot_id}:{self.conversation_id}:{self.message_id}"

    @property
    def conversation_key(self) -> str:
        return f"{self.platform}:{self.bot_id}:{self.conversation_id}"

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Reply(_Strict):
    """One outbound reply, addressed to the conversation (and thread) its envelope came from."""

    schema_version: Literal[1] = SCHEMA_VERSION
    platform: Platform
    bot_id: str
    conversation_id: str
    thread_id: str | None = None
    reply_to: str | None = Field(default=None, description="platform id of the message answered")
    in_reply_to_key: str = Field(description="dedupe key of the envelope answered")
    text: str = ""
    attachments: list[Attachment] = Field(default_factory=list)
    hints: dict[str, Any] = Field(default_factory=dict, description="platform hints: parse mode, embeds...")
    reason: str | None = Field(
        default=None, description="why this reply is not a model answer: rate_limited, all_providers_down..."
    )

    @classmethod
    def answering(cls, envelope: Envelope, text: str, **kwargs: Any) -> Reply:
        return cls(
            platform=envelope.platform,
            bot_id=envelope.bot_id,
            conversation_id=envelope.conversation_id,
            thread_id=envelope.thread_id,
            reply_to=envelope.message_id,
            in_reply_to_key=envelope.dedupe_key,
            text=text,
            hints={**envelope.hints, **kwargs.pop("hints", {})},
            **kwargs,
        )

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _explain(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(root)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def parse_envelope(data: Any) -> Envelope:
    """Validate a JSON-decoded envelope or raise ``EnvelopeError`` naming every bad field."""
    if not isinstance(data, dict):
        raise EnvelopeError(f"an envelope must be a JSON object, not {type(data).__name__}")
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise EnvelopeError(f"schema_version {version!r} is not supported (this build reads {SCHEMA_VERSION})")
    try:
        return Envelope.model_validate(data)
    except ValidationError as exc:
        raise EnvelopeError(f"invalid envelope: {_explain(exc)}") from None


def parse_reply(data: Any) -> Reply:
    if not isinstance(data, dict):
        raise EnvelopeError(f"a reply must be a JSON object, not {type(data).__name__}")
    try:
        return Reply.model_validate(data)
    except ValidationError as exc:
        raise EnvelopeError(f"invalid reply: {_explain(exc)}") from None
