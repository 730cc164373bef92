"""Slack: slack-bolt (Events API route or Socket Mode) inbound, Web API REST outbound."""

from __future__ import annotations

from fastapi import APIRouter

from adapters.base import Admit, Sender
from adapters.egress_limits import EgressLimits
from adapters.slack.adapter import SlackAdapter
from adapters.slack.sender import SlackSender
from adapters.slack.settings import SlackSettings

__all__ = [
    "SlackAdapter",
    "SlackSender",
    "SlackSettings",
    "build_adapter",
    "build_router",
    "build_sender",
    "load_settings",
]


def load_settings() -> SlackSettings:
    return SlackSettings()


def build_adapter(settings: SlackSettings, admit: Admit | None) -> SlackAdapter | None:
    return SlackAdapter(settings, admit) if settings.bot_token else None


def build_sender(settings: SlackSettings, redis_url: str) -> Sender | None:
    return SlackSender(settings, EgressLimits(redis_url)) if settings.bot_token else None


def build_router(adapter: SlackAdapter) -> APIRouter | None:
    """``POST /slack/events`` for the Events API; None in Socket Mode (Slack pushes over the socket)."""
    if adapter.socket_mode:
        return None
    from adapters.slack.router import build_router as events_router

    return events_router(adapter)
