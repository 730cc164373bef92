"""The base message handler: memory → LLM → (voice) → Reply. It always answers.

It only orchestrates the components it is given; every enhancement lives in a patch layer
around one of them (or around this handler). A failing base LLM becomes a short apology with a
recorded reason, never silence.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from gateway.envelope import Envelope, Reply
from workers.components import LLM, LLMRequest, Memory, Recalled, RecallQuery, Scope, Turn
from workers.report import current_report

__all__ = ["APOLOGY", "ChatHandler", "HandlerConfig", "scope_of"]

log = logging.getLogger(__name__)

APOLOGY = "Sorry, I can't answer right now: my language model is unavailable. Please try again in a moment."


@dataclass(frozen=True, slots=True)
class HandlerConfig:
    system_prompt: str
    history_turns: int = 8
    recall_limit: int = 5
    max_tokens: int = 200


def scope_of(envelope: Envelope) -> Scope:
    return Scope.PRIVATE if envelope.is_direct else Scope.CHANNEL


class ChatHandler:
    def __init__(self, llm: LLM, memory: Memory, config: HandlerConfig) -> None:
        self.llm = llm
        self.memory = memory
        self.config = config

    async def handle(self, envelope: Envelope) -> Reply:
        scope = scope_of(envelope)
        history = await self.memory.history(envelope.conversation_key, self.config.history_turns)
        recalled = await self.memory.recall(
            RecallQuery(
                text=envelope.text,
                conversation_key=envelope.conversation_key,
                user_id=envelope.author_id,
                scope=scope,
                bot_id=envelope.bot_id,
                platform=envelope.platform,
                limit=self.config.recall_limit,
                recent=history,
            )
        )
        request = LLMRequest(
            messages=self._prompt(envelope, history, recalled),
            user_id=envelope.author_id,
            conversation_key=envelope.conversation_key,
            max_tokens=self.config.max_tokens,
            personal=bool(history or recalled),
        )
        report = current_report()
        reason: str | None = None
        try:
            result = await self.llm.complete(request)
            text = result.text.strip() or "…"
            if result.degraded:
                reason = "all_providers_down"
            if report is not None:
                report.llm_provider, report.llm_model = result.provider, result.model
                report.prompt_tokens, report.completion_tokens = result.prompt_tokens, result.completion_tokens
                report.cost_usd, report.cache_hit = result.cost_usd, result.cached
        except Exception as exc:
            log.error("llm failed key=%s error=%r: answering with an apology", envelope.dedupe_key, exc)
            text, reason = APOLOGY, "llm_unavailable"
            if report is not None:
                report.error = repr(exc)
        if report is not None:
            report.ts_llm_done = time.time()
            report.degraded = reason
        if reason is None:
            await self._remember(envelope, text, scope)
        return Reply.answering(envelope, text, reason=reason)

    def _prompt(self, envelope: Envelope, history: list[Turn], recalled: list[Recalled]) -> list[dict[str, str]]:
        system = self.config.system_prompt
        seen = {turn.message_id for turn in history if turn.message_id}
        memories = [item for item in recalled if item.turn.message_id not in seen]
        if memories:
            from workers.memory.prompt import format_memories

            system += "\n\n" + format_memories(memories, budget_tokens=300, now=envelope.timestamp)
        messages = [{"role": "system", "content": system}]
        messages += [{"role": turn.role, "content": turn.text} for turn in history]
        messages.append({"role": "user", "content": envelope.text})
        return messages

    async def _remember(self, envelope: Envelope, answer: str, scope: Scope) -> None:
        common = {
            "conversation_key": envelope.conversation_key,
            "platform": str(envelope.platform),
            "bot_id": envelope.bot_id,
            "user_id": envelope.author_id,
            "scope": scope,
        }
        await self.memory.remember(
            Turn(
                role="user",
                text=envelope.text,
                author_id=envelope.author_id,
                author_name=envelope.author_name,
                message_id=envelope.message_id,
                timestamp=envelope.timestamp,
                **common,
            )
        )
        await self.memory.remember(
            Turn(
                role="assistant",
                text=answer,
                author_id=envelope.bot_id,
                message_id=f"re:{envelope.message_id}",
                **common,
            )
        )
