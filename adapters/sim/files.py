"""Files a simulated user sends: photos and documents, served back from the simulator's own file host.

Each simulator puts a ``SimFile`` where its platform does — Telegram a ``photo`` (several sizes)
or ``document`` with a ``file_id`` to resolve through ``getFile``; Discord an attachment on its CDN
(here the simulator's origin); Slack a ``files`` entry whose ``url_private`` needs the bot token —
and serves the bytes from there. ``url`` overrides where the event says the file is, so a test can
name a host that is not the platform's (the worker must not fetch it).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

__all__ = ["SimFile", "image_size", "sample_photo", "thumbnail"]


@dataclass(frozen=True, slots=True)
class SimFile:
    data: bytes
    filename: str = "photo.jpg"
    mime_type: str = "image/jpeg"
    url: str | None = None  # None: the simulator's own file host

    @property
    def is_image(self) -> bool:
        return self.mime_type.startswith("image/")


def sample_photo(width: int = 1600, height: int = 1200, fmt: str = "JPEG") -> bytes:
    """A photo-like image (a gradient with a diagonal band) of exactly ``width`` x ``height``."""
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    band = Image.new("RGB", (max(1, width // 8), height), (200, 60, 40))
    image.paste(band, (width // 3, 0))
    out = io.BytesIO()
    image.save(out, format=fmt, quality=90) if fmt == "JPEG" else image.save(out, format=fmt)
    return out.getvalue()


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of an image file, or None when it is not one."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (OSError, ValueError):
        return None


def thumbnail(data: bytes, side: int) -> bytes | None:
    """A smaller JPEG of ``data`` (Telegram sends every photo in several sizes, the largest last)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((side, side))
            out = io.BytesIO()
            image.convert("RGB").save(out, format="JPEG")
            return out.getvalue()
    except (OSError, ValueError):
        return None
