"""Local stand-ins for Discord, Telegram and Slack that speak their wire protocols on 127.0.0.1."""

from __future__ import annotations

from adapters.sim.discord import DiscordSimulator
from adapters.sim.slack import SlackSimulator
from adapters.sim.telegram import TelegramSimulator

__all__ = ["DiscordSimulator", "SlackSimulator", "TelegramSimulator"]
