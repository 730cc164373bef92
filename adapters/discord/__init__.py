"""Discord: a discord.py gateway client inbound, REST (discord.py's HTTPClient) outbound."""

from __future__ import annotations

from fastapi import APIRouter

from adapters.base import Admit, Sender
from adapters.discord.adapter import DiscordAdapter
from adapters.discord.sender import DiscordSender
from adapters.discord.settings import DiscordSettings
from adapters.egress_limits import EgressLimits

__all__ = [
    "DiscordAdapter",
    "DiscordSender",
    "DiscordSettings",
    "build_adapter",
    "build_router",
    "build_sender",
    "load_settings",
]


def load_settings() -> DiscordSettings:
    return DiscordSettings()


def build_adapter(settings: DiscordSettings, admit: Admit | None) -> DiscordAdapter | None:
    return DiscordAdapter(settings, admit) if settings.bot_token else None


def build_sender(settings: DiscordSettings, redis_url: str) -> Sender | None:
    return DiscordSender(settings, EgressLimits(redis_url)) if settings.bot_token else None


def build_router(adapter: DiscordAdapter) -> APIRouter | None:
    """Discord pushes over the gateway websocket: nothing to mount on the HTTP server."""
    return None
