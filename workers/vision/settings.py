"""Configuration of image input: ``[vision]`` in patchbay.toml, ``PATCHBAY_VISION_*`` in the environment.

Every field is documented in docs/vision.md and the README's configuration table.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import AliasChoices, Field

from gateway.shared.config import PatchbaySettings

__all__ = ["VisionSettings"]


class VisionSettings(PatchbaySettings):
    TOML_SECTION: ClassVar[str] = "vision"

    enabled: bool = Field(
        default=True,
        validation_alias=AliasChoices("PATCHBAY_VISION", "enabled"),
        description="send images to the model when it can see them; off = every model is treated as text-only",
    )
    model_sees_images: Literal["auto", "yes", "no"] = Field(
        default="auto",
        validation_alias=AliasChoices("PATCHBAY_VISION_MODEL", "model_sees_images"),
        description="auto = ask litellm (supports_vision) about the answering model; yes/no = the operator knows",
    )
    max_side: int = Field(
        default=1024,
        ge=64,
        le=8192,
        validation_alias=AliasChoices("PATCHBAY_VISION_MAX_SIDE", "max_side"),
        description="longest side, in pixels, of an image sent to the model (larger ones are scaled down)",
    )
    max_bytes: int = Field(
        default=10 * 1024 * 1024,
        gt=0,
        validation_alias=AliasChoices("PATCHBAY_VISION_MAX_BYTES", "max_bytes"),
        description="largest image file downloaded; a larger one is refused, with a note in the reply",
    )
    max_pixels: int = Field(
        default=40_000_000,
        gt=0,
        validation_alias=AliasChoices("PATCHBAY_VISION_MAX_PIXELS", "max_pixels"),
        description="largest decoded image (width x height): a small file that decodes huge is refused",
    )
    max_images: int = Field(
        default=4,
        ge=1,
        le=16,
        validation_alias=AliasChoices("PATCHBAY_VISION_MAX_IMAGES", "max_images"),
        description="images of one message sent to the model; the rest are named in the note",
    )
    jpeg_quality: int = Field(
        default=85, ge=30, le=95, validation_alias=AliasChoices("PATCHBAY_VISION_JPEG_QUALITY", "jpeg_quality")
    )
