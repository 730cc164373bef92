"""A tiny but valid Ogg/Opus file, built by hand: the simulators' voice notes and the tests' voice replies.

No encoder is needed: an Ogg Opus stream is an ``OpusHead`` page, an ``OpusTags`` page and audio
pages (RFC 7845), and a 20 ms Opus frame of silence is three bytes. Pages carry a CRC-32 (polynomial
0x04C11DB7, unreflected, initial value 0) that players check, so it is computed properly here.
"""

from __future__ import annotations

import struct

__all__ = ["is_ogg", "ogg_page", "tiny_opus_ogg"]

_SILENT_OPUS_FRAME = bytes([0xF8, 0xFF, 0xFE])  # TOC: CELT FB 20 ms, mono; then a silence frame


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
        table.append(crc & 0xFFFFFFFF)
    return table


_CRC_TABLE = _crc_table()


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[((crc >> 24) & 0xFF) ^ byte]
    return crc


def ogg_page(packet: bytes, *, serial: int, sequence: int, granule: int, header_type: int) -> bytes:
    """One Ogg page holding one packet (under 255 * 255 bytes)."""
    segments = [255] * (len(packet) // 255) + [len(packet) % 255]
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, header_type, granule, serial, sequence, 0, len(segments))
    page = header + bytes(segments) + packet
    crc = _ogg_crc(page)
    return page[:22] + struct.pack("<I", crc) + page[26:]


def tiny_opus_ogg(frames: int = 50, serial: int = 0x5EED) -> bytes:
    """``frames`` x 20 ms of silence (one second by default) as a valid Ogg/Opus file."""
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48000, 0, 0)
    vendor = b"patchbay"
    tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)
    pages = [
        ogg_page(head, serial=serial, sequence=0, granule=0, header_type=0x02),
        ogg_page(tags, serial=serial, sequence=1, granule=0, header_type=0x00),
    ]
    for index in range(frames):
        last = index == frames - 1
        pages.append(
            ogg_page(
                _SILENT_OPUS_FRAME,
                serial=serial,
                sequence=2 + index,
                granule=312 + 960 * (index + 1),
                header_type=0x04 if last else 0x00,
            )
        )
    return b"".join(pages)


def is_ogg(data: bytes) -> bool:
    """Whether ``data`` starts with a well-formed Ogg page whose CRC checks out."""
    if len(data) < 27 or not data.startswith(b"OggS\x00"):
        return False
    count = data[26]
    length = 27 + count + sum(data[27 : 27 + count])
    page = data[:length]
    stored = struct.unpack("<I", page[22:26])[0]
    return _ogg_crc(page[:22] + b"\x00\x00\x00\x00" + page[26:]) == stored
