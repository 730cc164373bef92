"""Does the answering model see images? litellm knows for the models it maps; the operator can say so.

The answering model is the first link of the provider chain (``[[llm.providers]]``), or the base
model when there is no chain: it is the one that answers whenever things are well. A later link
that cannot see (the offline SmolLM2 as the last resort, say) gets the text-only form of the same
prompt (``workers.vision.parts.text_only``), so a fallback never fails on an image.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from workers.llm.echo import ECHO_MODEL
from workers.llm.local import LOCAL_PROVIDER
from workers.llm.settings import LLMSettings
from workers.vision.settings import VisionSettings

__all__ = ["answering_model", "link_sees_images", "model_sees_images", "sees_images"]

log = logging.getLogger(__name__)


def answering_model(settings: LLMSettings | None = None) -> str:
    settings = settings or LLMSettings()
    return settings.providers[0].model if settings.providers else settings.model


@lru_cache(maxsize=64)
def sees_images(model: str) -> bool:
    """litellm's ``supports_vision`` for ``model``; False for the local and echo models and unknown ones."""
    if model == ECHO_MODEL or model.startswith(f"{LOCAL_PROVIDER}/"):
        return False
    from workers.llm.litellm_loader import load_litellm

    try:
        return bool(load_litellm().supports_vision(model=model))
    except Exception as exc:  # litellm raises for models missing from its map: not known to see
        log.debug("litellm cannot tell whether %s sees images (%r): treated as text-only", model, exc)
        return False


def _model_sees(model: str, vision: VisionSettings) -> bool:
    if model == ECHO_MODEL or model.startswith(f"{LOCAL_PROVIDER}/"):
        return False  # whatever the operator says: these two read text only
    if vision.model_sees_images != "auto":
        return vision.model_sees_images == "yes"
    return sees_images(model)


def model_sees_images(vision: VisionSettings | None = None, llm: LLMSettings | None = None) -> bool:
    """Whether this deployment sends images to its model, as configured (logged once by the caller)."""
    vision = vision or VisionSettings()
    return vision.enabled and _model_sees(answering_model(llm), vision)


@lru_cache(maxsize=1)
def _settings() -> VisionSettings:
    return VisionSettings()


@lru_cache(maxsize=64)
def link_sees_images(model: str) -> bool:
    """Whether one link of the chain may be handed image parts; the others get ``parts.text_only``."""
    return _model_sees(model, _settings())
