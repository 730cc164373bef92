"""The base message handler: memory → LLM → (voice) → Reply. It always answers.

It only orchestrates the components it is given; every enhancement lives in a patch layer
around one of them, or around this handler itself (kind ``handler``: a patch over ``handle``). A failing base LLM becomes a short apology with a
recorded reason, never silence.

Every per-user thing (voice choice, emotional state, memory, the LLM cache scope) is keyed by the
platform-qualified user (``envelope.user_key``). The system role holds only the operator's prompt:
recalled memories are user-supplied text, so they reach the model as a quoted block in a user-role
message of their own, just before the message being answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter

from gateway.shared.envelope import Attachment, Envelope, Platform, Reply
from patches.spec import DEFAULT_STREAM_NOTE
from workers.components import (
    LLM,
    EmotionReader,
    LLMRequest,
    LLMResult,
    Memory,
    Recalled,
    RecallQuery,
    Scope,
    Turn,
    Voice,
    VoiceStyle,
)
from workers.downloads import download
from workers.report import current_report
from workers.streaming import LiveView, current_live
from workers.vision.intake import ImageIntake, Vision
from workers.vision.parts import image_message
from workers.voice.preferences import VoicePreferences, parse_voice_command

__all__ = ["APOLOGY", "ChatHandler", "HandlerConfig", "VoiceReplies", "scope_of"]

log = logging.getLogger(__name__)

# Stages the handler answered without (the answer still went out): visible on a worker's /metrics.
DEGRADED = Counter("patchbay_handler_degraded_total", "answers given without a stage that failed", ["stage"])

APOLOGY = "Sorry, I can't answer right now: my language model is unavailable. Please try again in a moment."
STREAM_CUT_NOTE = DEFAULT_STREAM_NOTE  # the note a layer's own mid-stream failure ends with, too


@dataclass(frozen=True, slots=True)
class HandlerConfig:
    system_prompt: str
    history_turns: int = 8
    recall_limit: int = 5
    max_tokens: int = 200


@dataclass(frozen=True, slots=True)
class VoiceReplies:
    """The (patched) voice and the per-user / per-conversation choice of spoken replies."""

    voice: Voice
    preferences: VoicePreferences


# Voice notes play natively on Telegram and Discord as OGG/Opus; WAV plays in every browser.
_AUDIO_FORMAT = {Platform.WEBCHAT: "wav"}


def scope_of(envelope: Envelope) -> Scope:
    return Scope.PRIVATE if envelope.is_direct else Scope.CHANNEL


class ChatHandler:
    def __init__(
        self,
        llm: LLM,
        memory: Memory,
        config: HandlerConfig,
        *,
        emotion: EmotionReader | None = None,
        voice: VoiceReplies | None = None,
        vision: Vision | None = None,
    ) -> None:
        self.llm = llm
        self.memory = memory
        self.config = config
        self.emotion = emotion
        self.voice = voice
        self.vision = vision  # None: image attachments are not looked at (the text is answered)

    async def handle(self, envelope: Envelope) -> Reply:
        command = parse_voice_command(envelope.text)
        if command is not None:
            return await self._voice_command(envelope, command)
        if envelope.voice is not None and not envelope.text.strip():
            envelope, problem = await self._transcribed(envelope)
            if problem is not None:
                return Reply.answering(envelope, problem, reason="voice_input_unavailable")
        if self.emotion is not None:
            try:
                # Through the EmotionReader interface only: the reader may be patched.
                await self.emotion.observe(envelope.user_key, await self.emotion.read(envelope.text))
            except Exception as exc:  # the emotion state is an enhancement input; the answer must not depend on it
                log.warning("emotion reading failed key=%s error=%r", envelope.dedupe_key, exc)
                DEGRADED.labels("emotion").inc()
        reply = await self._answer(envelope)
        if reply.reason is None and self.voice is not None:
            reply = await self._spoken(envelope, reply)
        return reply

    async def _voice_command(self, envelope: Envelope, enabled: bool) -> Reply:
        if self.voice is None:
            from workers.voice.engine import INSTALL_HINT

            return Reply.answering(
                envelope, f"Voice replies are not available here: {INSTALL_HINT}", reason="voice_off"
            )
        await self.voice.preferences.set_user(envelope.user_key, enabled)
        return Reply.answering(envelope, "Voice replies are on." if enabled else "Voice replies are off.")

    async def _transcribed(self, envelope: Envelope) -> tuple[Envelope, str | None]:
        """The voice message as text, or what to tell the user instead (never silence)."""
        from workers.voice.transcribe import VOICE_INPUT_NOT_SET_UP, Transcriber

        transcriber = Transcriber()
        voice = envelope.voice
        if voice is None or not transcriber.available:
            log.info("voice message without a transcription provider key=%s", envelope.dedupe_key)
            return envelope, VOICE_INPUT_NOT_SET_UP
        try:
            audio = await download(voice, envelope.platform)
            text = await transcriber.transcribe(audio, filename=voice.filename or "voice.ogg")
        except Exception as exc:
            # DownloadError never names the URL (a Telegram file URL contains the bot token).
            log.warning("transcription failed key=%s error=%s: %s", envelope.dedupe_key, type(exc).__name__, exc)
            DEGRADED.labels("transcription").inc()
            return envelope, "Sorry, I could not listen to that voice message. Could you type it instead?"
        if not text.strip():
            return envelope, "I could not make out any words in that voice message."
        return envelope.model_copy(update={"text": text}), None

    async def _spoken(self, envelope: Envelope, reply: Reply) -> Reply:
        assert self.voice is not None
        wanted = await self.voice.preferences.should_speak(
            envelope.user_key, envelope.conversation_key, envelope.voice is not None
        )
        if not wanted:
            return reply
        style = VoiceStyle(user_id=envelope.user_key, audio_format=_AUDIO_FORMAT.get(envelope.platform, "ogg"))
        try:
            audio = await self.voice.voice.speak(reply.text, style)
        except Exception as exc:  # a reply without its voice is still a reply; the text goes out
            log.error("voice synthesis failed key=%s error=%r: replying in text", envelope.dedupe_key, exc)
            DEGRADED.labels("voice").inc()
            return reply
        report = current_report()
        if report is not None:
            report.voice = True
        attachment = Attachment.from_bytes(
            audio.data,
            audio.mime_type,
            duration_s=audio.duration_s,
            is_voice=True,
            filename=_voice_filename(audio.mime_type),
        )
        return reply.model_copy(update={"attachments": [*reply.attachments, attachment]})

    async def _images(self, envelope: Envelope) -> ImageIntake | None:
        """The message's images for the model, or None without any (``workers.vision``; docs/vision.md)."""
        if self.vision is None or not self.vision.images_of(envelope):
            return None
        intake = await self.vision.intake(envelope)
        report = current_report()
        if report is not None:
            report.images = intake.records  # metadata only: type, sizes, dimensions, outcome
        return intake

    async def _answer(self, envelope: Envelope) -> Reply:
        intake = await self._images(envelope)
        if intake is not None and not intake.images and not envelope.text.strip():
            # Nothing the model could answer: the honest note is the whole reply (one reply, a recorded reason).
            return Reply.answering(envelope, intake.note, reason="image_not_seen")
        scope = scope_of(envelope)
        history = await self.memory.history(envelope.conversation_key, self.config.history_turns)
        recalled = await self.memory.recall(
            RecallQuery(
                text=envelope.text,
                conversation_key=envelope.conversation_key,
                user_id=envelope.user_key,
                scope=scope,
                bot_id=envelope.bot_id,
                platform=envelope.platform,
                limit=self.config.recall_limit,
                recent=history,
            )
        )
        request = LLMRequest(
            messages=self._prompt(envelope, history, recalled, intake),
            user_id=envelope.user_key,
            conversation_key=envelope.conversation_key,
            max_tokens=self.config.max_tokens,
            personal=bool(history or recalled) or bool(intake and intake.images),
            use_cache=not (intake and intake.images),  # an answer about an image is never cached
            metadata={"envelope": envelope},  # where it was said: the tools patch's allow-list and built-ins
        )
        report = current_report()
        reason: str | None = None
        if report is not None:
            report.ts_llm_start = time.time()
        live = current_live()
        try:
            # A message with images is answered whole: the chain's streaming path sends text only.
            streams = live is not None and not (intake and intake.images)
            result = await (self._streamed(request, live) if streams and live else self.llm.complete(request))
            text = result.text.strip() or "…"
            if result.degraded:
                reason = "all_providers_down"
                if report is not None:
                    report.error = "; ".join(result.errors)[:4000]  # each provider's error, for analytics
            if report is not None:
                report.llm_provider, report.llm_model = result.provider, result.model
                report.prompt_tokens, report.completion_tokens = result.prompt_tokens, result.completion_tokens
                report.cost_usd, report.cache_hit = result.cost_usd, result.cached
        except Exception as exc:
            log.error("llm failed key=%s error=%r: answering with an apology", envelope.dedupe_key, exc)
            DEGRADED.labels("llm").inc()
            text, reason = APOLOGY, "llm_unavailable"
            if report is not None:
                report.error = repr(exc)
        if report is not None:
            report.ts_llm_done = time.time()
            report.degraded = reason
        if reason is None:
            # Memory keeps text only: an image-only message is remembered as that, never as its bytes.
            remembered = (
                envelope
                if envelope.text.strip() or intake is None
                else envelope.model_copy(update={"text": "[sent an image]"})
            )
            await self._remember(remembered, text, scope)
            if intake is not None and intake.note:
                text = f"{intake.note}\n\n{text}"
        return Reply.answering(envelope, text, reason=reason)

    async def _streamed(self, request: LLMRequest, live: LiveView) -> LLMResult:
        """``LLM.stream``, each piece shown as it arrives; the result of the whole answer.

        A stream that breaks after its first piece ends with what was said and a note (a second
        attempt would say it again); one that breaks before raises, as ``complete`` would.
        """
        said: list[str] = []
        result: LLMResult | None = None
        try:
            async for delta in self.llm.stream(request):
                if delta.text:
                    said.append(delta.text)
                    live.feed(delta.text)
                if delta.result is not None:
                    result = delta.result
        except Exception as exc:
            if not said:
                raise
            log.warning("llm stream broke off mid-answer error=%r: ending it with a note", exc)
            DEGRADED.labels("llm_stream").inc()
            live.feed(STREAM_CUT_NOTE)
            return LLMResult(text="".join(said) + STREAM_CUT_NOTE, model="", errors=[repr(exc)])
        if result is None:  # ended without its accounting (a layer's note after a cut): what was said
            return LLMResult(text="".join(said), model="")
        return result

    def _prompt(
        self, envelope: Envelope, history: list[Turn], recalled: list[Recalled], intake: ImageIntake | None = None
    ) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = [{"role": "system", "content": self.config.system_prompt}]
        messages += [{"role": turn.role, "content": turn.text} for turn in history]
        seen = {turn.message_id for turn in history if turn.message_id}
        memories = [item for item in recalled if item.turn.message_id not in seen]
        if memories:
            from workers.memory.prompt import format_memories

            block = format_memories(memories, budget_tokens=300, now=envelope.timestamp)
            if block:
                messages.append({"role": "user", "content": block})
        if intake is not None and intake.images:
            messages.append(image_message(envelope.text, intake.images))
        else:
            messages.append({"role": "user", "content": envelope.text})
        return messages

    async def _remember(self, envelope: Envelope, answer: str, scope: Scope) -> None:
        common: dict[str, Any] = {
            "conversation_key": envelope.conversation_key,
            "platform": str(envelope.platform),
            "bot_id": envelope.bot_id,
            "user_id": envelope.user_key,
            "scope": scope,
        }
        user_turn = Turn(
            role="user",
            text=envelope.text,
            author_id=envelope.author_id,
            author_name=envelope.author_name,
            message_id=envelope.message_id,
            timestamp=envelope.timestamp,
            **common,
        )
        answer_turn = Turn(
            role="assistant", text=answer, author_id=envelope.bot_id, message_id=f"re:{envelope.message_id}", **common
        )
        # Together, so the store can write both in one transaction (in this order).
        await asyncio.gather(self.memory.remember(user_turn), self.memory.remember(answer_turn))


def _voice_filename(mime_type: str) -> str:
    return "voice.wav" if "wav" in mime_type else "voice.ogg"
