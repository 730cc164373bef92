"""Slack: slack-bolt (Events API route or Socket Mode) inbound, Web API REST outbound."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.base import Admit, Sender
from adapters.slack.settings import SlackSettings

if TYPE_CHECKING:  # the client libraries load only on the side that uses them (gateway inbound, workers outbound)
    from fastapi import APIRouter

    from adapters.slack.adapter import SlackAdapter

__all__ = [
    "SlackSettings",
    "build_adapter",
    "build_router",
    "build_sender",
    "load_settings",
]


def load_settings() -> SlackSettings:
    return SlackSettings()


def build_adapter(settings: SlackSettings, admit: Admit | None) -> SlackAdapter | None:
    from adapters.slack.adapter import SlackAdapter

    return SlackAdapter(settings, admit) if settings.bot_token else None


def build_sender(settings: SlackSettings, redis_url: str) -> Sender | None:
    from adapters.egress_limits import EgressLimits
    from adapters.slack.sender import SlackSender

    return SlackSender(settings, EgressLimits(redis_url)) if settings.bot_token else None


def build_router(adapter: SlackAdapter) -> APIRouter | None:
    """``POST /slack/events`` for the Events API; None in Socket Mode (Slack pushes over the socket)."""
    if adapter.socket_mode:
        return None
    from adapters.slack.router import build_router as events_router

    return events_router(adapter)
