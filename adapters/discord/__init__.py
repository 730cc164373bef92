"""Discord: a discord.py gateway client inbound, REST (discord.py's HTTPClient) outbound."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.base import Admit, Sender
from adapters.discord.settings import DiscordSettings

if TYPE_CHECKING:  # the client libraries load only on the side that uses them (gateway inbound, workers outbound)
    from fastapi import APIRouter

    from adapters.discord.adapter import DiscordAdapter

__all__ = [
    "DiscordSettings",
    "build_adapter",
    "build_router",
    "build_sender",
    "load_settings",
]


def load_settings() -> DiscordSettings:
    return DiscordSettings()


def build_adapter(settings: DiscordSettings, admit: Admit | None) -> DiscordAdapter | None:
    from adapters.discord.adapter import DiscordAdapter

    return DiscordAdapter(settings, admit) if settings.bot_token else None


def build_sender(settings: DiscordSettings, redis_url: str) -> Sender | None:
    from adapters.discord.sender import DiscordSender
    from adapters.egress_limits import EgressLimits

    return DiscordSender(settings, EgressLimits(redis_url)) if settings.bot_token else None


def build_router(adapter: DiscordAdapter) -> APIRouter | None:
    """Discord pushes over the gateway websocket: nothing to mount on the HTTP server."""
    return None
