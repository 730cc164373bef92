"""Pillow's part: scaling within the limit, upright, metadata dropped, bombs and non-images refused."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.vision.images import picture, size_of
from workers.vision.images import ImageRefused, prepare_image
from workers.vision.parts import content_text, has_images, image_message, text_only


def test_a_large_photo_is_scaled_within_the_longest_side() -> None:
    prepared = prepare_image(picture(3000, 2000), max_side=512, max_pixels=40_000_000)
    assert (prepared.width, prepared.height) == (512, 341)
    assert size_of(prepared.data) == (512, 341)
    assert prepared.mime_type == "image/jpeg"
    assert (prepared.original_width, prepared.original_height) == (3000, 2000)


def test_a_small_image_is_never_enlarged() -> None:
    prepared = prepare_image(picture(200, 100, "PNG"), max_side=1024, max_pixels=40_000_000)
    assert (prepared.width, prepared.height) == (200, 100)


def test_transparency_stays_png_and_an_opaque_png_becomes_jpeg() -> None:
    assert prepare_image(picture(300, 300, "PNG", alpha=True), max_side=128, max_pixels=10**7).mime_type == "image/png"
    assert prepare_image(picture(300, 300, "PNG"), max_side=128, max_pixels=10**7).mime_type == "image/jpeg"


def test_exif_orientation_is_applied_and_metadata_is_dropped() -> None:
    # Orientation 6: the camera was turned; the stored 400x200 is shown as 200x400.
    prepared = prepare_image(picture(400, 200, orientation=6), max_side=1024, max_pixels=10**7)
    assert (prepared.width, prepared.height) == (200, 400)
    with Image.open(io.BytesIO(prepared.data)) as image:
        assert not image.getexif()  # no Make, no orientation, no GPS: pixels only


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = io.BytesIO()
    Image.new("L", (8000, 8000)).save(bomb, format="PNG")  # ~60 KB on disk, 64 MP decoded
    assert len(bomb.getvalue()) < 200_000
    with pytest.raises(ImageRefused) as refused:
        prepare_image(bomb.getvalue(), max_side=1024, max_pixels=40_000_000)
    assert refused.value.reason == "too_many_pixels"


@pytest.mark.parametrize("data", [b"not an image at all", picture(64, 64)[:200], b""])
def test_garbage_and_truncated_files_are_refused(data: bytes) -> None:
    with pytest.raises(ImageRefused) as refused:
        prepare_image(data, max_side=512, max_pixels=10**7)
    assert refused.value.reason == "not_an_image"


def test_an_unreadable_format_is_refused_by_name() -> None:
    tiff = io.BytesIO()
    Image.new("RGB", (10, 10)).save(tiff, format="TIFF")
    with pytest.raises(ImageRefused) as refused:
        prepare_image(tiff.getvalue(), max_side=512, max_pixels=10**7)
    assert refused.value.reason == "unsupported_format" and "TIFF" in str(refused.value)


def test_content_parts_and_their_text_only_form() -> None:
    image = prepare_image(picture(64, 32), max_side=512, max_pixels=10**7)
    message = image_message("what is this?", [image])
    assert message["content"][0] == {"type": "text", "text": "what is this?"}
    assert message["content"][1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    messages = [{"role": "system", "content": "be brief"}, message]
    assert has_images(messages)
    flat = text_only(messages)
    assert flat[0] is messages[0] and not has_images(flat)
    assert flat[1]["content"] == "what is this?\n[an image the model cannot see]"
    assert content_text(image_message("", [image])["content"]) == "[an image the model cannot see]"
    assert text_only(flat) is flat  # nothing to flatten: the same list
