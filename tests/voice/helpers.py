"""Small real implementations of the component Protocols that record what they were asked."""

from __future__ import annotations

import socket

from workers.components import Audio, EmotionReading, LLMRequest, LLMResult, StreamsWhole, VoiceStyle


class RecordingVoice:
    """A Voice that returns a fixed clip and keeps every style it was asked to speak with."""

    def __init__(self) -> None:
        self.styles: list[VoiceStyle] = []

    async def speak(self, text: str, style: VoiceStyle) -> Audio:
        self.styles.append(style)
        return Audio(text.encode(), "audio/wav", 0.0)


class RecordingLLM(StreamsWhole):
    def __init__(self) -> None:
        self.requests: list[LLMRequest] = []

    async def complete(self, request: LLMRequest) -> LLMResult:
        self.requests.append(request)
        return LLMResult(text="ok", model="recording")


def reading(label: str) -> EmotionReading:
    return EmotionReading(label, 1.0, {label: 1.0})


def closed_port_url() -> str:
    """A Redis URL where nothing listens: every call fails with a real connection error."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"
