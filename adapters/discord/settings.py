"""Discord settings: ``DISCORD_*`` environment variables, or the ``[discord]`` section of patchbay.toml."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import NoDecode

from gateway.shared.config import PatchbaySettings, comma_separated

__all__ = ["DiscordSettings"]


class DiscordSettings(PatchbaySettings):
    TOML_SECTION: ClassVar[str] = "discord"

    bot_token: str | None = Field(default=None, validation_alias=AliasChoices("DISCORD_BOT_TOKEN", "bot_token"))
    api_base_url: str = Field(
        default="https://discord.com/api/v10",
        validation_alias=AliasChoices("DISCORD_API_BASE_URL", "api_base_url"),
        description="REST root (discord.http.Route.BASE)",
    )
    gateway_url: str = Field(
        default="wss://gateway.discord.gg/",
        validation_alias=AliasChoices("DISCORD_GATEWAY_URL", "gateway_url"),
        description="gateway websocket (DiscordWebSocket.DEFAULT_GATEWAY)",
    )
    channels: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=AliasChoices("DISCORD_CHANNELS", "channels"),
        description="channel ids where the bot answers every message, comma-separated",
    )

    _channels_from_commas = field_validator("channels", mode="before")(comma_separated)

    def point_library_here(self) -> None:
        """discord.py reads its endpoints from class attributes: the documented way to move them (docs/decisions.md)."""
        import discord.gateway
        import discord.http
        import yarl

        discord.http.Route.BASE = self.api_base_url.rstrip("/")
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
