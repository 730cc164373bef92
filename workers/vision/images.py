"""Decode, check and scale one image with Pillow, and re-encode it for the model.

The file a user sent is never passed on as it is: it is decoded (so it really is an image of a
format we read), its pixel count is checked against ``max_pixels`` *before* any pixel is decoded
(a 50 KB PNG can decode to gigabytes), it is turned upright (EXIF orientation), scaled so that its
longest side is at most ``max_side``, and re-encoded: JPEG, or PNG when it has transparency. The
re-encoding also drops every metadata block (EXIF with its GPS position, XMP, comments): the model
gets pixels, not where the photo was taken. Pure CPU: callers run it in a thread.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["READABLE_FORMATS", "ImageRefused", "PreparedImage", "prepare_image"]

READABLE_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP"})


class ImageRefused(Exception):
    """An image that is not sent to the model; ``reason`` is a short code, ``str()`` says it for a user."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PreparedImage:
    data: bytes
    mime_type: str
    width: int  # as sent to the model
    height: int
    original_width: int
    original_height: int
    original_bytes: int


def prepare_image(data: bytes, *, max_side: int, max_pixels: int, jpeg_quality: int = 85) -> PreparedImage:
    """The image in ``data`` scaled within ``max_side`` and re-encoded; ``ImageRefused`` otherwise."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:  # reads the header only
                if opened.format not in READABLE_FORMATS:
                    raise ImageRefused(
                        "unsupported_format", f"its format ({opened.format or 'unknown'}) is not one I read"
                    )
                width, height = opened.size
                if width * height > max_pixels:
                    raise ImageRefused("too_many_pixels", f"it is too large ({width}x{height} pixels)")
                if opened.format == "JPEG":
                    opened.draft("RGB", (max_side, max_side))  # decode a JPEG at a reduced scale: much less work
                image = ImageOps.exif_transpose(opened)  # a copy, upright; the first frame of an animation
                # Only ever shrinks. Pillow's default (bicubic, after a cheap box reduction to twice the
                # size) was about half the time of a full Lanczos on a 12-megapixel photo, and looks the same.
                image.thumbnail((max_side, max_side))
    except ImageRefused:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused("not_an_image", "it is not an image I can read") from None
    except (OSError, ValueError, SyntaxError):  # truncated or corrupt files raise these from the decoders
        raise ImageRefused("not_an_image", "the file is damaged") from None
    transparent = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    out = io.BytesIO()
    if transparent:
        image.convert("RGBA").save(out, format="PNG", optimize=True)
        mime = "image/png"
    else:
        image.convert("RGB").save(out, format="JPEG", quality=jpeg_quality, optimize=True)
        mime = "image/jpeg"
    return PreparedImage(
        data=out.getvalue(),
        mime_type=mime,
        width=image.width,
        height=image.height,
        original_width=width,
        original_height=height,
        original_bytes=len(data),
    )
