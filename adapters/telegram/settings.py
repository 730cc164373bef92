"""Telegram settings: ``TELEGRAM_*`` environment variables, or the ``[telegram]`` section of patchbay.toml."""

from __future__ import annotations

import hashlib
import hmac
from typing import ClassVar

from pydantic import AliasChoices, Field

from gateway.shared.config import PatchbaySettings

__all__ = ["TelegramSettings"]


class TelegramSettings(PatchbaySettings):
    TOML_SECTION: ClassVar[str] = "telegram"

    bot_token: str | None = Field(default=None, validation_alias=AliasChoices("TELEGRAM_BOT_TOKEN", "bot_token"))
    api_base_url: str = Field(
        default="https://api.telegram.org",
        validation_alias=AliasChoices("TELEGRAM_API_BASE_URL", "api_base_url"),
        description="the Bot API root; /bot<token>/<method> and /file/bot<token>/<path> are appended",
    )
    webhook_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("TELEGRAM_WEBHOOK_URL", "webhook_url"),
        description="public URL of POST /telegram/webhook; unset = long polling",
    )
    webhook_secret: str | None = Field(
        default=None,
        validation_alias=AliasChoices("TELEGRAM_WEBHOOK_SECRET", "webhook_secret"),
        description="X-Telegram-Bot-Api-Secret-Token; unset = derived from the bot token",
    )

    @property
    def api_root(self) -> str:
        return self.api_base_url.rstrip("/")

    @property
    def effective_webhook_secret(self) -> str:
        """The configured secret, or one derived from the token: stable across restarts and gateway replicas."""
        if self.webhook_secret:
            return self.webhook_secret
        token = (self.bot_token or "").encode()
        return hmac.new(token, b"patchbay-telegram-webhook", hashlib.sha256).hexdigest()[:64]
