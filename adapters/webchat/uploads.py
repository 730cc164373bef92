"""Images uploaded in the web chat: checked at the edge, kept in Redis under their owner, briefly.

``POST /api/upload`` takes the image itself as the body (``Content-Type: image/jpeg`` …), limited by
``PATCHBAY_WEBCHAT_MAX_IMAGE_BYTES`` before it is read (``gateway.edge.body``). The gateway never
decodes it (that is the worker's job, in ``workers.vision``): it checks the file starts as a JPEG,
PNG, GIF or WebP does, so nothing else is stored, and keeps it as a Redis hash under
``webchat_upload(<user key>, <random id>)`` with a TTL (``PATCHBAY_WEBCHAT_UPLOAD_TTL``). A message
names its uploads by id (``"images": [id]``); ids are looked up under the *caller's* user key, so
someone else's id is simply unknown (422). The worker deletes an upload once it has read it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final

from redis.asyncio import Redis

from gateway.shared.keys import webchat_upload

__all__ = ["MAX_IMAGES", "UPLOAD_PATH", "UploadPolicy", "known_uploads", "sniff_image", "store_upload"]

UPLOAD_PATH: Final = "/api/upload"
MAX_IMAGES: Final = 4

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


@dataclass(frozen=True, slots=True)
class UploadPolicy:
    max_bytes: int = 5 * 1024 * 1024
    ttl_s: int = 300


def sniff_image(data: bytes) -> str | None:
    """The image type ``data`` starts as, or None: what the file is, not what the client says it is."""
    for signature, mime in _SIGNATURES:
        if data.startswith(signature):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


async def store_upload(redis: Redis, user_key: str, data: bytes, mime_type: str, ttl_s: int) -> str:
    upload_id = secrets.token_urlsafe(18)
    key = webchat_upload(user_key, upload_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={"data": data, "mime_type": mime_type, "bytes": len(data)})
        pipe.expire(key, ttl_s)
        await pipe.execute()
    return upload_id


async def known_uploads(redis: Redis, user_key: str, upload_ids: list[str]) -> list[tuple[str, str, int]] | None:
    """(id, type, size) of each of the caller's uploads, or None when any is unknown, expired or someone else's."""
    found: list[tuple[str, str, int]] = []
    for upload_id in upload_ids:
        mime, size = await redis.hmget(webchat_upload(user_key, upload_id), ["mime_type", "bytes"])
        if mime is None or size is None:
            return None
        found.append((upload_id, mime.decode() if isinstance(mime, bytes) else str(mime), int(size)))
    return found
