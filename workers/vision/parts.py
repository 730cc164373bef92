"""OpenAI content parts: a user message with images, and the text-only form of any prompt.

A message's ``content`` is a string, or a list of parts (``{"type": "text", "text": …}``,
``{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,…"}}``) — litellm's format,
which it translates for every provider that takes images. Images travel as data URLs: the worker
downloaded them from the platform (with its token), and no provider is ever handed a platform URL.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workers.vision.images import PreparedImage

__all__ = ["IMAGE_PLACEHOLDER", "content_text", "has_images", "image_count", "image_message", "text_only"]

IMAGE_PLACEHOLDER = "[an image the model cannot see]"


def image_message(text: str, images: Sequence[PreparedImage]) -> dict[str, Any]:
    """The user message: its text (when there is any) first, then each image as a data URL."""
    parts: list[dict[str, Any]] = []
    if text.strip():
        parts.append({"type": "text", "text": text})
    for image in images:
        url = f"data:{image.mime_type};base64,{base64.b64encode(image.data).decode('ascii')}"
        parts.append({"type": "image_url", "image_url": {"url": url}})
    return {"role": "user", "content": parts}


def _is_image(part: Any) -> bool:
    return isinstance(part, dict) and part.get("type") in ("image_url", "image")


def image_count(message: dict[str, Any]) -> int:
    content = message.get("content")
    return sum(1 for part in content if _is_image(part)) if isinstance(content, list) else 0


def has_images(messages: Sequence[dict[str, Any]]) -> bool:
    return any(image_count(message) for message in messages)


def content_text(content: Any) -> str:
    """The text of a message's content, whether a string or a list of parts (images as a placeholder)."""
    if not isinstance(content, list):
        return "" if content is None else str(content)
    pieces = []
    for part in content:
        if _is_image(part):
            pieces.append(IMAGE_PLACEHOLDER)
        elif isinstance(part, dict) and part.get("type") == "text":
            pieces.append(str(part.get("text", "")))
    return "\n".join(piece for piece in pieces if piece)


def text_only(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` for a model that cannot see: every list content flattened to its text (same list if none)."""
    if not any(isinstance(message.get("content"), list) for message in messages):
        return messages
    return [
        {**message, "content": content_text(message["content"])}
        if isinstance(message.get("content"), list)
        else message
        for message in messages
    ]
