"""Configuration of the LLM component: ``[llm]`` in patchbay.toml, ``PATCHBAY_LLM_*`` in the environment.

The provider chain comes from ``[[llm.providers]]`` tables or, winning over them, the JSON list in
``PATCHBAY_LLM_PROVIDERS``. Every field is documented in docs/llm.md.
"""

from __future__ import annotations

import os
from typing import ClassVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from gateway.shared.config import PatchbaySettings

__all__ = ["LOCAL_MODEL", "LLMSettings", "ProviderConfig"]

LOCAL_MODEL = "local/smollm2"


class ProviderConfig(BaseModel):
    """One link of the provider chain: a litellm model string, where it lives and how to authenticate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1, description="any litellm model string, e.g. openai/gpt-4o-mini")
    api_base: str | None = None
    api_key_env: str | None = Field(default=None, description="name of the env var holding the key, never the key")
    timeout: float | None = Field(default=None, gt=0, description="per-attempt timeout in seconds")

    def api_key(self) -> str | None:
        """The key read from the environment at call time, so a rotated key needs no restart of the config."""
        return os.environ.get(self.api_key_env) if self.api_key_env else None


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class LLMSettings(PatchbaySettings):
    TOML_SECTION: ClassVar[str] = "llm"

    # ---- the base client
    model: str = Field(default=LOCAL_MODEL, validation_alias=_alias("PATCHBAY_LLM_MODEL", "model"))
    api_base: str | None = Field(default=None, validation_alias=_alias("PATCHBAY_LLM_API_BASE", "api_base"))
    api_key_env: str | None = Field(
        default=None,
        validation_alias=_alias("PATCHBAY_LLM_API_KEY_ENV", "api_key_env"),
        description="env var holding the base model's key; unset = litellm's own variables (OPENAI_API_KEY...)",
    )
    timeout_s: float = Field(default=60.0, gt=0, validation_alias=_alias("PATCHBAY_LLM_TIMEOUT", "timeout_s"))
    max_tokens: int = Field(default=200, gt=0, validation_alias=_alias("PATCHBAY_LLM_MAX_TOKENS", "max_tokens"))
    context_tokens: int = Field(
        default=1536,
        gt=0,
        validation_alias=_alias("PATCHBAY_LLM_CONTEXT_TOKENS", "context_tokens"),
        description="prompt token budget; the conversation is trimmed (oldest turns first) to fit",
    )

    # ---- the resilience layer: provider chain
    providers: list[ProviderConfig] = Field(
        default_factory=list,
        validation_alias=_alias("PATCHBAY_LLM_PROVIDERS", "providers"),
        description="ordered fallback chain; empty = the base model alone",
    )
    last_resort_base: bool = Field(
        default=True,
        validation_alias=_alias("PATCHBAY_LLM_LAST_RESORT", "last_resort_base"),
        description="after the chain, try the base client (by default the offline local/smollm2)",
    )

    # ---- retries, backoff, cooldowns
    num_retries: int = Field(
        default=2,
        ge=0,
        validation_alias=_alias("PATCHBAY_LLM_RETRIES", "num_retries"),
        description="retries of the last provider that may heal, and of a 429 with a short Retry-After",
    )
    retry_after_max_s: float = Field(
        default=1.0,
        ge=0,
        validation_alias=_alias("PATCHBAY_LLM_RETRY_AFTER_MAX", "retry_after_max_s"),
        description="longest Retry-After a 429 is waited for on the same provider; longer falls through",
    )
    allowed_fails: int = Field(
        default=3,
        ge=0,
        validation_alias=_alias("PATCHBAY_LLM_ALLOWED_FAILS", "allowed_fails"),
        description="failures of one provider within a minute before it is cooled down",
    )
    cooldown_s: float = Field(default=30.0, ge=0, validation_alias=_alias("PATCHBAY_LLM_COOLDOWN", "cooldown_s"))

    # ---- the response cache
    cache_enabled: bool = Field(default=True, validation_alias=_alias("PATCHBAY_LLM_CACHE", "cache_enabled"))
    cache_ttl_s: int = Field(default=3600, gt=0, validation_alias=_alias("PATCHBAY_LLM_CACHE_TTL", "cache_ttl_s"))
    cache_namespace: str = Field(
        default="patchbay:llm:cache", validation_alias=_alias("PATCHBAY_LLM_CACHE_NAMESPACE", "cache_namespace")
    )

    apology: str = Field(
        default="Sorry — I can't reach my language model right now. Please try again in a minute.",
        validation_alias=_alias("PATCHBAY_LLM_APOLOGY", "apology"),
    )
