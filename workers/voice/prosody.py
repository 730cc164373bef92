"""Measuring speech from the audio itself: decode, fundamental frequency (YIN) and speaking time.

Used by the prosody benchmark and the tests to check that the emotion presets really move pitch
and duration by the configured factors, whatever the engine claims.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from workers.voice.tools import run_tool

__all__ = [
    "DURATION_TOLERANCE",
    "F0_TOLERANCE",
    "ProsodyMeasure",
    "decode_to_pcm",
    "estimate_f0_hz",
    "measure",
    "speech_duration_s",
]

ANALYSIS_RATE = 16000
# Relative tolerances the prosody checks allow between the configured factor and the measured ratio.
# espeak-ng + sox land within about 1.5% here; the margin absorbs other espeak-ng versions and voices.
F0_TOLERANCE = 0.05
DURATION_TOLERANCE = 0.05


@dataclass(frozen=True, slots=True)
class ProsodyMeasure:
    f0_hz: float  # median fundamental frequency over voiced frames
    speech_s: float  # from the first to the last frame louder than the silence threshold
    total_s: float


async def decode_to_pcm(
    data: bytes, mime_type: str, *, opusdec: str = "opusdec", sox: str = "sox"
) -> tuple[NDArray[np.float64], int]:
    """Mono float samples at ``ANALYSIS_RATE``; decoding with the real decoder also proves the file valid."""
    if mime_type == "audio/ogg":
        wav = await run_tool(
            [opusdec, "--quiet", "--rate", str(ANALYSIS_RATE), "--force-wav", "-", "-"], data, timeout_s=30
        )
    else:
        wav = await run_tool(
            [sox, "-t", "wav", "-", "-t", "wav", "-r", str(ANALYSIS_RATE), "-c", "1", "-b", "16", "-"],
            data,
            timeout_s=30,
        )
    with wave.open(io.BytesIO(wav), "rb") as reader:
        # Streamed WAV headers carry a placeholder size: read what is there, not what the header says.
        frames = reader.readframes(reader.getnframes())
        channels, rate, width = reader.getnchannels(), reader.getframerate(), reader.getsampwidth()
    if width != 2:
        raise ValueError(f"expected 16-bit PCM from the decoder, got {8 * width}-bit")
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples, rate


def _frames(samples: NDArray[np.float64], size: int, hop: int) -> NDArray[np.float64]:
    if len(samples) < size:
        samples = np.pad(samples, (0, size - len(samples)))
    count = 1 + (len(samples) - size) // hop
    index = np.arange(size)[None, :] + hop * np.arange(count)[:, None]
    return samples[index]


def estimate_f0_hz(
    samples: NDArray[np.float64],
    rate: int,
    *,
    fmin: float = 60.0,
    fmax: float = 400.0,
    threshold: float = 0.15,
) -> float:
    """Median F0 of the voiced frames by YIN (de Cheveigné & Kawahara, 2002), vectorised over frames."""
    max_lag = int(rate / fmin)
    min_lag = int(rate / fmax)
    window = int(0.025 * rate)
    frames = _frames(samples, window + max_lag, int(0.010 * rate))
    energy = (frames[:, :window] ** 2).sum(axis=1)
    frames = frames[energy > 0.05 * energy.max()]  # only frames with speech in them
    if len(frames) == 0:
        raise ValueError("no speech found in the audio")
    # d(tau) = sum_j (x_j - x_{j+tau})^2 over the window, via cumulative energies and an FFT correlation.
    size = 1 << int(np.ceil(np.log2(2 * (window + max_lag))))
    spectrum = np.fft.rfft(frames, size, axis=1)
    head = np.fft.rfft(frames[:, :window], size, axis=1)
    correlation = np.fft.irfft(np.conj(head) * spectrum, size, axis=1)[:, : max_lag + 1]
    squares = np.cumsum(np.pad(frames**2, ((0, 0), (1, 0))), axis=1)
    lags = np.arange(max_lag + 1)
    shifted_energy = squares[:, lags + window] - squares[:, lags]
    difference = squares[:, window][:, None] + shifted_energy - 2 * correlation
    cumulative = np.cumsum(difference[:, 1:], axis=1) / np.arange(1, max_lag + 1)
    normalised = np.ones_like(difference)
    normalised[:, 1:] = difference[:, 1:] / np.maximum(cumulative, 1e-12)
    estimates = []
    for row in normalised:
        below = np.flatnonzero(row[min_lag:] < threshold)
        if below.size == 0:
            continue
        lag = min_lag + int(below[0])
        while lag + 1 <= max_lag and row[lag + 1] < row[lag]:
            lag += 1  # walk down to the local minimum of this dip
        if 0 < lag < max_lag:  # parabolic interpolation for sub-sample precision
            a, b, c = row[lag - 1], row[lag], row[lag + 1]
            denominator = a - 2 * b + c
            offset = 0.5 * (a - c) / denominator if denominator != 0 else 0.0
        else:
            offset = 0.0
        estimates.append(rate / (lag + offset))
    if not estimates:
        raise ValueError("no voiced frame found in the audio")
    return float(np.median(estimates))


def speech_duration_s(samples: NDArray[np.float64], rate: int, *, silence_db: float = -40.0) -> float:
    """Time from the first to the last 10 ms frame above ``silence_db`` relative to the loudest frame."""
    hop = int(0.010 * rate)
    frames = _frames(samples, hop, hop)
    power = (frames**2).mean(axis=1) + 1e-12
    loud = np.flatnonzero(10 * np.log10(power / power.max()) > silence_db)
    if loud.size == 0:
        return 0.0
    return float((loud[-1] - loud[0] + 1) * hop / rate)


async def measure(data: bytes, mime_type: str) -> ProsodyMeasure:
    samples, rate = await decode_to_pcm(data, mime_type)
    return ProsodyMeasure(estimate_f0_hz(samples, rate), speech_duration_s(samples, rate), len(samples) / rate)
