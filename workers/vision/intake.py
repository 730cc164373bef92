"""One message's images: which attachments are images, fetching them safely, preparing them, accounting.

Fetching follows the download rules of ``workers.downloads`` (only the platform's own file hosts,
the token only to them, size-limited while streaming); here the limit is ``PATCHBAY_VISION_MAX_BYTES``
(or the download limit, whichever is smaller), and a size the platform declared over it is refused
before any byte is fetched. A web chat upload is read from Redis under its owner's key
(``gateway.shared.keys.webchat_upload``), so an upload id alone fetches nothing, and deleted once
read (or at once when the model cannot see it): it waits in Redis only for its message.

What this module records about an image — its type, sizes, dimensions and outcome — is all that
leaves the worker (the analytics event); the bytes exist only in this request's prompt.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter
from redis.asyncio import Redis

from gateway.shared.envelope import Attachment, Envelope, Platform
from gateway.shared.keys import webchat_upload
from workers.downloads import DownloadError, DownloadSettings, download
from workers.vision.images import ImageRefused, PreparedImage, prepare_image
from workers.vision.settings import VisionSettings

__all__ = ["IMAGES", "ImageIntake", "Vision", "is_image"]

log = logging.getLogger(__name__)

IMAGES = Counter("patchbay_vision_images_total", "images users sent, by what became of them", ["outcome"])

CANNOT_SEE = "I can't see images here (my model reads text only)"


def is_image(attachment: Attachment) -> bool:
    return attachment.mime_type.lower().startswith("image/") and not attachment.is_voice


@dataclass(slots=True)
class ImageIntake:
    """What became of one message's images: those for the model, a note for the user, metadata for analytics."""

    images: list[PreparedImage] = field(default_factory=list)
    note: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"


class Vision:
    """The handler's image step. ``sees`` is decided once per worker (``workers.vision.capability``)."""

    def __init__(self, settings: VisionSettings, *, sees: bool, redis: Redis | None = None) -> None:
        self.settings = settings
        self.sees = sees
        self.redis = redis
        download_limit = DownloadSettings()
        self._download = download_limit.model_copy(
            update={"max_bytes": min(download_limit.max_bytes, settings.max_bytes)}
        )

    @staticmethod
    def images_of(envelope: Envelope) -> list[Attachment]:
        return [item for item in envelope.attachments if is_image(item)]

    async def intake(self, envelope: Envelope) -> ImageIntake:
        """Fetch and prepare the images of ``envelope``; never raises for an image, records why instead."""
        attachments = self.images_of(envelope)
        result = ImageIntake()
        if not attachments:
            return result
        if not self.sees:
            await self._discard(envelope, attachments)
            for item in attachments:
                result.records.append(self._record(item, "model_cannot_see"))
            IMAGES.labels("model_cannot_see").inc(len(attachments))
            if envelope.text.strip():
                result.note = f"{CANNOT_SEE}, so I answered your text."
            else:
                result.note = f"{CANNOT_SEE}. Tell me in words what it shows and I'll help."
            return result
        taken, skipped = attachments[: self.settings.max_images], attachments[self.settings.max_images :]
        outcomes = await asyncio.gather(*(self._one(envelope, item) for item in taken))
        await self._discard(envelope, attachments)
        problems: list[str] = []
        for index, (item, outcome) in enumerate(zip(taken, outcomes, strict=True), start=1):
            if isinstance(outcome, PreparedImage):
                result.images.append(outcome)
                result.records.append(
                    self._record(
                        item,
                        "sent",
                        bytes=outcome.original_bytes,
                        width=outcome.original_width,
                        height=outcome.original_height,
                        sent_width=outcome.width,
                        sent_height=outcome.height,
                        sent_bytes=len(outcome.data),
                        sent_mime_type=outcome.mime_type,
                    )
                )
                IMAGES.labels("sent").inc()
            else:
                reason, why = outcome
                result.records.append(self._record(item, reason))
                IMAGES.labels(reason).inc()
                which = "your image" if len(attachments) == 1 else f"image {index}"
                problems.append(f"I couldn't look at {which}: {why}.")
        for item in skipped:
            result.records.append(self._record(item, "too_many"))
        if skipped:
            IMAGES.labels("too_many").inc(len(skipped))
            problems.append(f"I looked at the first {len(taken)} images only.")
        result.note = " ".join(problems)
        return result

    async def _one(self, envelope: Envelope, item: Attachment) -> PreparedImage | tuple[str, str]:
        limit = self._download.max_bytes
        if item.size is not None and item.size > limit:
            return self._refused(envelope, "too_large", f"it is larger than {_megabytes(limit)}")
        try:
            data = await self._fetch(envelope, item)
        except DownloadError as exc:
            if exc.reason == "too_large":
                return self._refused(envelope, "too_large", f"it is larger than {_megabytes(limit)}")
            log.warning("image download refused key=%s reason=%s: %s", envelope.dedupe_key, exc.reason, exc)
            return self._refused(envelope, exc.reason, "I could not fetch it")
        settings = self.settings
        try:
            return await asyncio.to_thread(
                prepare_image,
                data,
                max_side=settings.max_side,
                max_pixels=settings.max_pixels,
                jpeg_quality=settings.jpeg_quality,
            )
        except ImageRefused as exc:
            return self._refused(envelope, exc.reason, str(exc))

    @staticmethod
    def _refused(envelope: Envelope, reason: str, why: str) -> tuple[str, str]:
        log.info("image not sent to the model key=%s reason=%s", envelope.dedupe_key, reason)
        return reason, why

    async def _fetch(self, envelope: Envelope, item: Attachment) -> bytes:
        if envelope.platform != Platform.WEBCHAT:
            return await download(item, envelope.platform, settings=self._download)
        if self.redis is None or not item.file_id:
            raise DownloadError("web chat: no upload to read", "failed")
        data = await self.redis.hget(webchat_upload(envelope.user_key, item.file_id), "data")
        if data is None:
            raise DownloadError("web chat: the upload expired or is not this user's", "upload_missing")
        blob = data.encode() if isinstance(data, str) else bytes(data)  # a client decoding responses would give str
        if len(blob) > self._download.max_bytes:
            raise DownloadError("web chat: the upload is too large", "too_large")
        return blob

    async def _discard(self, envelope: Envelope, attachments: list[Attachment]) -> None:
        if envelope.platform != Platform.WEBCHAT or self.redis is None:
            return
        keys = [webchat_upload(envelope.user_key, item.file_id) for item in attachments if item.file_id]
        if keys:
            try:
                await self.redis.delete(*keys)
            except Exception as exc:  # the TTL removes it anyway; the answer must not wait on this
                log.warning("could not delete web chat uploads key=%s error=%r", envelope.dedupe_key, exc)

    @staticmethod
    def _record(item: Attachment, outcome: str, **details: Any) -> dict[str, Any]:
        # Metadata only: never a URL (a platform's file URL can name private files) and never bytes.
        return {"mime_type": item.mime_type, "declared_bytes": item.size, "outcome": outcome, **details}
