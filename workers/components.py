"""The component interfaces of the stack, and the values they pass.

Every component kind is a small async ``typing.Protocol``. Base components implement it and
always work; a patch layer implements the *same* Protocol and holds the layer below, so the
stack can be rebuilt, reordered or rolled back without any caller noticing. Values are plain
slotted dataclasses: they stay inside one worker process and must be cheap to build.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from gateway.shared.envelope import Envelope, Reply

__all__ = [
    "COMPONENT_KINDS",
    "LLM",
    "Audio",
    "ComponentKind",
    "Delta",
    "EmotionReader",
    "EmotionReading",
    "Handler",
    "LLMRequest",
    "LLMResult",
    "Memory",
    "RecallQuery",
    "Recalled",
    "Scope",
    "StreamsWhole",
    "ToolCall",
    "Turn",
    "Voice",
    "VoiceStyle",
]


class ComponentKind(StrEnum):
    """The kinds of component this application stacks patches over, in the order it builds them.

    The order matters: a kind's patched component is a dependency of the kinds after it (the voice
    and tone patches read the patched emotion reader; the handler holds the patched LLM, memory,
    voice and emotion). The patch framework knows none of this: ``workers.stack`` passes it.
    """

    EMOTION = "emotion"
    MEMORY = "memory"
    LLM = "llm"
    VOICE = "voice"
    HANDLER = "handler"


COMPONENT_KINDS: tuple[str, ...] = tuple(kind.value for kind in ComponentKind)


# --------------------------------------------------------------------------- LLM


@dataclass(slots=True)
class LLMRequest:
    """An OpenAI-style chat request plus who it is for (rollout, cache scoping, analytics).

    ``messages`` may hold the tool loop's steps (an assistant message with ``tool_calls``, then
    ``tool`` messages), and a message's ``content`` is a string or a list of content parts (text and
    images: ``workers.vision.parts``), so values are not all strings. ``tools`` are tool definitions
    in litellm's (OpenAI's) format; None offers none, and a link of the chain whose model cannot call
    tools is sent the request without them.
    """

    messages: list[dict[str, Any]]
    user_id: str | None = None
    conversation_key: str | None = None
    max_tokens: int = 256
    temperature: float = 0.7
    personal: bool = True  # the prompt holds this user's own context: never share a cached answer
    use_cache: bool = True  # False bypasses any response cache for this request
    metadata: dict[str, Any] = field(default_factory=dict)
    tools: list[dict[str, Any]] | None = None


@dataclass(slots=True, frozen=True)
class ToolCall:
    """One call the model asked for: ``arguments`` is the JSON text exactly as the model wrote it."""

    id: str
    name: str
    arguments: str


@dataclass(slots=True)
class LLMResult:
    text: str
    model: str
    provider: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cached: bool = False
    latency_ms: float = 0.0
    errors: list[str] = field(default_factory=list)  # what failed on the way to this answer
    degraded: bool = False  # True when this is an apology, not a model answer
    tool_calls: list[ToolCall] = field(default_factory=list)  # the model asks for these instead of (or with) text


@dataclass(slots=True)
class Delta:
    """One piece of a streamed answer: ``text`` to append. The last piece of a stream that finished
    carries ``result``, the whole answer with its tokens and cost (its ``text`` is everything said)."""

    text: str = ""
    result: LLMResult | None = None


class LLM(Protocol):
    async def complete(self, request: LLMRequest) -> LLMResult: ...

    def stream(self, request: LLMRequest) -> AsyncIterator[Delta]:
        """The same answer as ``complete``, piece by piece (docs/llm.md, "Streaming")."""
        ...


class StreamsWhole:
    """``LLM.stream`` for an LLM that only completes: its whole answer as one piece.

    For simple bases and test doubles; a real client streams token by token instead.
    """

    async def stream(self, request: LLMRequest) -> AsyncIterator[Delta]:
        result = await self.complete(request)  # type: ignore[attr-defined]
        yield Delta(text=result.text, result=result)


# --------------------------------------------------------------------------- memory


class Scope(StrEnum):
    """Who may see a remembered turn again. Retrieval never crosses scopes."""

    PRIVATE = "private"  # a direct message: only this user, only in DMs
    CHANNEL = "channel"  # a group conversation: only this conversation
    WORKSPACE = "workspace"  # shared across the bot's conversations in one workspace/guild


@dataclass(slots=True)
class Turn:
    conversation_key: str
    role: str  # "user" or "assistant"
    text: str
    author_id: str
    author_name: str = ""
    platform: str = ""
    bot_id: str = ""
    user_id: str = ""  # the human this turn belongs to (the author, or whom the bot answered)
    scope: Scope = Scope.CHANNEL
    message_id: str = ""
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(slots=True)
class RecallQuery:
    text: str
    conversation_key: str
    user_id: str
    scope: Scope
    bot_id: str = ""
    platform: str = ""
    limit: int = 5
    recent: list[Turn] = field(default_factory=list)


@dataclass(slots=True)
class Recalled:
    turn: Turn
    score: float


class Memory(Protocol):
    async def remember(self, turn: Turn) -> None: ...

    async def history(self, conversation_key: str, limit: int) -> list[Turn]: ...

    async def recall(self, query: RecallQuery) -> list[Recalled]: ...

    async def forget_user(self, user_id: str) -> int: ...


# --------------------------------------------------------------------------- voice and emotion


@dataclass(slots=True)
class VoiceStyle:
    pitch: float = 1.0  # multiplier of the engine's default pitch
    speed: float = 1.0  # multiplier of the engine's default rate
    voice: str | None = None
    emotion: str | None = None
    user_id: str | None = None
    audio_format: str | None = None  # "ogg" (Opus: Telegram, Discord, Slack) or "wav"; None = the engine's default


@dataclass(slots=True)
class Audio:
    data: bytes
    mime_type: str  # "audio/ogg" (Opus) for Telegram/Discord, a browser format for the web chat
    duration_s: float
    sample_rate: int = 48000


class Voice(Protocol):
    async def speak(self, text: str, style: VoiceStyle) -> Audio: ...


@dataclass(slots=True)
class EmotionReading:
    label: str  # anger, disgust, fear, joy, neutral, sadness, surprise
    confidence: float
    scores: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class EmotionReader(Protocol):
    async def read(self, text: str) -> EmotionReading: ...

    async def state(self, user_id: str) -> EmotionReading: ...

    async def observe(self, user_id: str, reading: EmotionReading) -> EmotionReading: ...


# --------------------------------------------------------------------------- the message handler


class Handler(Protocol):
    async def handle(self, envelope: Envelope) -> Reply: ...
