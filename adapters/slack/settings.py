"""Slack settings: ``SLACK_*`` environment variables, or the ``[slack]`` section of patchbay.toml."""

from __future__ import annotations

from typing import ClassVar

from pydantic import AliasChoices, Field

from gateway.shared.config import PatchbaySettings

__all__ = ["SlackSettings"]


class SlackSettings(PatchbaySettings):
    TOML_SECTION: ClassVar[str] = "slack"

    bot_token: str | None = Field(default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN", "bot_token"))
    signing_secret: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "signing_secret"),
        description="verifies POST /slack/events; required unless Socket Mode is used",
    )
    app_token: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_APP_TOKEN", "app_token"),
        description="xapp- token: set = Socket Mode instead of the Events API",
    )
    api_base_url: str = Field(
        default="https://slack.com/api/",
        validation_alias=AliasChoices("SLACK_API_BASE_URL", "api_base_url"),
        description="the Web API root",
    )
    health_probe_s: float = Field(
        default=60.0,
        validation_alias=AliasChoices("SLACK_HEALTH_PROBE", "health_probe_s"),
        description="how often the Events API mode checks the token with auth.test",
    )

    @property
    def api_root(self) -> str:
        return self.api_base_url if self.api_base_url.endswith("/") else self.api_base_url + "/"
