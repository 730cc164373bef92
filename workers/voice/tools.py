"""Running the audio command-line tools as async subprocesses, and the little WAV arithmetic we need."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import Sequence

__all__ = ["VoiceError", "ogg_opus_duration_s", "repair_streamed_wav", "run_tool", "wav_duration_s", "wav_sample_rate"]


class VoiceError(RuntimeError):
    """Synthesis or encoding failed; the message names the tool and what it said."""


async def run_tool(args: Sequence[str], stdin: bytes | None, *, timeout_s: float) -> bytes:
    """Run one tool with ``stdin`` piped in; return its stdout or raise ``VoiceError`` with its stderr."""
    try:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError as exc:
        raise VoiceError(f"{args[0]} is not installed (not found on PATH)") from exc
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin), timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise VoiceError(f"{args[0]} did not finish within {timeout_s:g}s") from None
    if process.returncode != 0:
        detail = stderr.decode("utf-8", "replace").strip()[-400:]
        raise VoiceError(f"{args[0]} exited with {process.returncode}: {detail or 'no message'}")
    return stdout


def _wav(data: bytes) -> wave.Wave_read:
    return wave.open(io.BytesIO(data), "rb")


def wav_duration_s(data: bytes) -> float:
    with _wav(data) as reader:
        return reader.getnframes() / reader.getframerate()


def wav_sample_rate(data: bytes) -> int:
    with _wav(data) as reader:
        return reader.getframerate()


def repair_streamed_wav(data: bytes) -> bytes:
    """Rewrite the header of a WAV written to a pipe.

    A tool streaming WAV to stdout cannot seek back to fill in the sizes, so espeak-ng leaves a
    placeholder frame count of about a billion; every later duration would be wrong without this.
    """
    with _wav(data) as reader:
        params = reader.getparams()
        frames = reader.readframes(params.nframes)
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(params.nchannels)
        writer.setsampwidth(params.sampwidth)
        writer.setframerate(params.framerate)
        writer.writeframes(frames)
    return out.getvalue()


def ogg_opus_duration_s(data: bytes) -> float:
    """Duration of an OGG/Opus stream from its last page's granule position (always 48 kHz), less pre-skip."""
    if not data.startswith(b"OggS"):
        raise VoiceError("not an OGG stream: missing the OggS capture pattern")
    head = data.find(b"OpusHead")
    if head < 0:
        raise VoiceError("OGG stream without an OpusHead: not Opus")
    pre_skip = int.from_bytes(data[head + 10 : head + 12], "little")
    last_page = data.rfind(b"OggS")
    granule = int.from_bytes(data[last_page + 6 : last_page + 14], "little")
    return max(granule - pre_skip, 0) / 48000
