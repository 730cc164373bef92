"""Settings of the base memory (``[memory]`` in patchbay.toml, ``PATCHBAY_MEMORY_*`` / ``PATCHBAY_EMBEDDING_*``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import AliasChoices, Field

from gateway.shared.config import PatchbaySettings

__all__ = ["MemorySettings"]


class MemorySettings(PatchbaySettings):
    TOML_SECTION: ClassVar[str] = "memory"

    embedding_model: str = Field(
        default="local",
        validation_alias=AliasChoices("PATCHBAY_EMBEDDING_MODEL", "embedding_model"),
        description="'local' (bundled MiniLM, offline), 'hash', or a litellm embedding model string",
    )
    embedding_dim: int = Field(
        default=384,
        validation_alias=AliasChoices("PATCHBAY_EMBEDDING_DIM", "embedding_dim"),
        description="dimension of the litellm model's vectors (the local models are 384)",
    )
    embed_assistant_turns: bool = Field(
        default=False,
        validation_alias=AliasChoices("PATCHBAY_MEMORY_EMBED_ASSISTANT", "embed_assistant_turns"),
        description="also embed the bot's own answers; off: they are found by their words, and the embedder"
        " (the worker's largest CPU cost) does half the work",
    )
    lexical_weight: float = Field(
        default=0.35, validation_alias=AliasChoices("PATCHBAY_MEMORY_LEXICAL_WEIGHT", "lexical_weight")
    )
    vector_weight: float = Field(
        default=0.55, validation_alias=AliasChoices("PATCHBAY_MEMORY_VECTOR_WEIGHT", "vector_weight")
    )
    recency_weight: float = Field(
        default=0.10, validation_alias=AliasChoices("PATCHBAY_MEMORY_RECENCY_WEIGHT", "recency_weight")
    )
    recency_half_life_days: float = Field(
        default=30.0, validation_alias=AliasChoices("PATCHBAY_MEMORY_RECENCY_HALF_LIFE_DAYS", "recency_half_life_days")
    )
    vector_window: int = Field(
        default=5000,
        validation_alias=AliasChoices("PATCHBAY_MEMORY_VECTOR_WINDOW", "vector_window"),
        description="most recent in-scope turns scored by vector similarity (older ones are reached lexically)",
    )
    lexical_pool: int = Field(
        default=100, validation_alias=AliasChoices("PATCHBAY_MEMORY_LEXICAL_POOL", "lexical_pool")
    )
