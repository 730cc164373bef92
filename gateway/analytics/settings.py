"""Settings of analytics: ``PATCHBAY_ANALYTICS_*`` / ``[analytics]`` in patchbay.toml."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from gateway.shared.events import EventSettings

__all__ = ["AnalyticsSettings"]


class AnalyticsSettings(EventSettings):
    """The writer's and exports' settings; ``queue`` comes from ``EventSettings``."""

    key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PATCHBAY_ANALYTICS_KEY", "key"),
        description="HMAC key of the pseudonyms; unset = generated once into <data_dir>/analytics.key",
    )
    batch_size: int = Field(
        default=1000,
        validation_alias=AliasChoices("PATCHBAY_ANALYTICS_BATCH", "batch_size"),
        description="events the writer moves and inserts per transaction",
    )
    dead_letter_max: int = Field(
        default=1000,
        ge=1,
        validation_alias=AliasChoices("PATCHBAY_ANALYTICS_DEAD_MAX", "dead_letter_max"),
        description="unusable events kept for inspection in <queue>:dead (the newest; older ones are dropped)",
    )
    dead_letter_ttl_s: int = Field(
        default=7 * 86400,
        gt=0,
        validation_alias=AliasChoices("PATCHBAY_ANALYTICS_DEAD_TTL", "dead_letter_ttl_s"),
        description="the dead-letter list expires this long after its last addition",
    )
