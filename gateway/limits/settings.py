"""Settings of rate limiting and abuse prevention: ``PATCHBAY_LIMIT_*`` / ``[limits]`` in patchbay.toml."""

from __future__ import annotations

from typing import ClassVar

from pydantic import AliasChoices, Field

from gateway.shared.config import PatchbaySettings

__all__ = ["LimitSettings"]


def _env(env: str, name: str) -> AliasChoices:
    return AliasChoices(env, name)


class LimitSettings(PatchbaySettings):
    """Every limit is in the ``limits`` library's notation; an empty string switches that limit off."""

    TOML_SECTION: ClassVar[str] = "limits"

    user: str = Field(
        default="6/minute;60/hour;300/day",
        validation_alias=_env("PATCHBAY_LIMIT_USER", "user"),
        description="per user (platform + user id), across bots and conversations",
    )
    conversation: str = Field(
        default="20/minute;300/hour",
        validation_alias=_env("PATCHBAY_LIMIT_CONVERSATION", "conversation"),
        description="per conversation (channel, group or DM)",
    )
    platform: str = Field(
        default="600/minute",
        validation_alias=_env("PATCHBAY_LIMIT_PLATFORM", "platform"),
        description="per platform, to stay under the platforms' own API limits",
    )
    global_: str = Field(
        default="1200/minute",
        validation_alias=_env("PATCHBAY_LIMIT_GLOBAL", "global"),
        description="all traffic together: what the LLM budget can answer",
    )
    webchat_session: str = Field(
        default="10/minute;120/hour",
        validation_alias=_env("PATCHBAY_LIMIT_WEBCHAT_SESSION", "webchat_session"),
        description="web chat messages per browser session, checked at the edge before admission",
    )
    webchat_address: str = Field(
        default="30/minute;600/hour",
        validation_alias=_env("PATCHBAY_LIMIT_WEBCHAT_ADDRESS", "webchat_address"),
        description="web chat messages per client address (all its sessions together)",
    )
    webchat_rating: str = Field(
        default="30/minute;300/hour",
        validation_alias=_env("PATCHBAY_LIMIT_WEBCHAT_RATING", "webchat_rating"),
        description="web chat ratings per session and per client address",
    )
    webchat_upload: str = Field(
        default="5/minute;30/hour",
        validation_alias=_env("PATCHBAY_LIMIT_WEBCHAT_UPLOAD", "webchat_upload"),
        description="web chat image uploads per session and per client address",
    )
    max_message_chars: int = Field(
        default=4000, validation_alias=_env("PATCHBAY_MAX_MESSAGE_CHARS", "max_message_chars")
    )
    max_attachments: int = Field(default=4, validation_alias=_env("PATCHBAY_MAX_ATTACHMENTS", "max_attachments"))
    flood_messages: int = Field(
        default=15,
        validation_alias=_env("PATCHBAY_FLOOD_MESSAGES", "flood_messages"),
        description="more messages than this from one user within flood_window_s mutes the user",
    )
    flood_window_s: float = Field(default=10.0, validation_alias=_env("PATCHBAY_FLOOD_WINDOW", "flood_window_s"))
    mute_s: float = Field(default=600.0, validation_alias=_env("PATCHBAY_MUTE_SECONDS", "mute_s"))
    spam_conversations: int = Field(
        default=3,
        validation_alias=_env("PATCHBAY_SPAM_CONVERSATIONS", "spam_conversations"),
        description="the same text from one user in this many conversations within spam_window_s is spam",
    )
    spam_window_s: float = Field(default=600.0, validation_alias=_env("PATCHBAY_SPAM_WINDOW", "spam_window_s"))
    spam_min_chars: int = Field(
        default=12,
        validation_alias=_env("PATCHBAY_SPAM_MIN_CHARS", "spam_min_chars"),
        description="shorter normalised texts ('hi', 'thanks!') are never treated as spam",
    )
    key_prefix: str = Field(default="pb", validation_alias=_env("PATCHBAY_LIMIT_KEY_PREFIX", "key_prefix"))
