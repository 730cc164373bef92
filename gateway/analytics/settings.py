"""Settings of analytics: ``PATCHBAY_ANALYTICS_*`` / ``[analytics]`` in patchbay.toml."""

from __future__ import annotations

from typing import ClassVar

from pydantic import AliasChoices, Field

from gateway.config import PatchbaySettings

__all__ = ["AnalyticsSettings"]


class AnalyticsSettings(PatchbaySettings):
    TOML_SECTION: ClassVar[str] = "analytics"

    key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PATCHBAY_ANALYTICS_KEY", "key"),
        description="HMAC key of the pseudonyms; unset = generated once into <data_dir>/analytics.key",
    )
    queue: str = Field(
        default="pb:analytics:events",
        validation_alias=AliasChoices("PATCHBAY_ANALYTICS_QUEUE", "queue"),
        description="the Redis list producers LPUSH events onto",
    )
    batch_size: int = Field(
        default=1000,
        validation_alias=AliasChoices("PATCHBAY_ANALYTICS_BATCH", "batch_size"),
        description="events the writer moves and inserts per transaction",
    )
