"""Telegram: python-telegram-bot long polling or webhook inbound, Bot API REST outbound."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.base import Admit, Sender
from adapters.telegram.settings import TelegramSettings

if TYPE_CHECKING:  # the client libraries load only on the side that uses them (gateway inbound, workers outbound)
    from fastapi import APIRouter

    from adapters.telegram.adapter import TelegramAdapter

__all__ = [
    "TelegramSettings",
    "build_adapter",
    "build_router",
    "build_sender",
    "load_settings",
]


def load_settings() -> TelegramSettings:
    return TelegramSettings()


def build_adapter(settings: TelegramSettings, admit: Admit | None) -> TelegramAdapter | None:
    from adapters.telegram.adapter import TelegramAdapter

    return TelegramAdapter(settings, admit) if settings.bot_token else None


def build_sender(settings: TelegramSettings, redis_url: str) -> Sender | None:
    from adapters.egress_limits import EgressLimits
    from adapters.telegram.sender import TelegramSender

    return TelegramSender(settings, EgressLimits(redis_url)) if settings.bot_token else None


def build_router(adapter: TelegramAdapter) -> APIRouter | None:
    """``POST /telegram/webhook`` in webhook mode; None when polling (nothing to mount)."""
    if not adapter.webhook_mode:
        return None
    from adapters.telegram.router import build_router as webhook_router

    return webhook_router(adapter)
