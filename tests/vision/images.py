"""Test images made with Pillow: a photo-like gradient of any size and format, optionally with EXIF."""

from __future__ import annotations

import io

from PIL import Image


def picture(
    width: int, height: int, fmt: str = "JPEG", *, alpha: bool = False, orientation: int | None = None
) -> bytes:
    """A gradient image (compresses like a photo, not like a flat colour); ``orientation`` sets EXIF 0x0112."""
    mode = "RGBA" if alpha else "RGB"
    image = Image.linear_gradient("L").resize((width, height)).convert(mode)
    if alpha:
        image.putalpha(128)
    out = io.BytesIO()
    kwargs: dict[str, object] = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        exif[0x010F] = "PatchbayCam"  # Make: proves metadata is dropped on re-encoding
        kwargs["exif"] = exif
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size
