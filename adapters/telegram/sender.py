"""The outbound half on Telegram: Bot API calls over REST, split, formatted as entities, threaded and rate limited centrally."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging

from telegram import Bot, Message, MessageEntity, ReplyParameters
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError

from adapters.base import SendError
from adapters.egress_limits import EgressLimits, RateLimitedError
from adapters.live import LiveTarget, StreamingSettings
from adapters.telegram.formatting import TelegramPart, render_markdown, send_formatted
from adapters.telegram.settings import TelegramSettings
from gateway.shared.envelope import Attachment, Reply

__all__ = ["TelegramSender"]

log = logging.getLogger(__name__)


class TelegramSender:
    platform = "telegram"

    def __init__(self, settings: TelegramSettings, limits: EgressLimits) -> None:
        if not settings.bot_token:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        root = settings.api_root
        self._bot = Bot(settings.bot_token, base_url=f"{root}/bot", base_file_url=f"{root}/file/bot")
        self._limits = limits
        self._ready = asyncio.Lock()
        self._initialised = False

    async def _bot_ready(self) -> Bot:
        async with self._ready:
            if not self._initialised:
                await self._call(self._bot.initialize)
                self._initialised = True
        return self._bot

    async def send(self, reply: Reply) -> list[str]:
        bot = await self._bot_ready()
        chat_id = int(reply.conversation_id)
        is_group = bool(reply.hints.get("is_group", chat_id < 0))
        thread = reply.hints.get("message_thread_id")
        if thread is None and reply.thread_id is not None:
            thread = int(reply.thread_id)
        reply_to = ReplyParameters(int(reply.reply_to), allow_sending_without_reply=True) if reply.reply_to else None
        sent: list[str] = []
        # Split, then each part's Markdown becomes text plus entities (no parse_mode: nothing to escape).
        for part in render_markdown(reply.text):
            parameters = reply_to if not sent else None

            async def send_text(part: TelegramPart = part, parameters: ReplyParameters | None = parameters) -> Message:
                async def send(text: str, entities: list[MessageEntity] | None) -> Message:
                    return await bot.send_message(
                        chat_id, text, entities=entities, reply_parameters=parameters, message_thread_id=thread
                    )

                return await self._call(send_formatted, send, part)

            message = await self._limits.call("telegram", str(chat_id), send_text, is_group=is_group)
            sent.append(str(message.message_id))
        for attachment in reply.attachments:
            parameters = reply_to if not sent else None
            send_file = functools.partial(self._send_file, bot, chat_id, attachment, parameters, thread)
            message = await self._limits.call("telegram", str(chat_id), send_file, is_group=is_group)
            sent.append(str(message.message_id))
        return sent

    @property
    def limits(self) -> EgressLimits:
        return self._limits

    def live(self, stub: Reply, resume: str, settings: StreamingSettings) -> LiveTarget:
        """The streamed view of the reply ``stub`` addresses (``adapters.telegram.live``)."""
        from adapters.telegram.live import TelegramLive

        return TelegramLive(self, self._bot, stub, settings.edit_interval_s)

    async def call(self, method, *args, **kwargs):  # type: ignore[no-untyped-def]
        """One Bot API call with this sender's error mapping, once the bot is initialised."""
        await self._bot_ready()
        return await self._call(method, *args, **kwargs)

    async def _send_file(
        self, bot: Bot, chat_id: int, attachment: Attachment, reply_to: ReplyParameters | None, thread: int | None
    ) -> Message:
        data = attachment.data()
        name = attachment.filename
        common = {"reply_parameters": reply_to, "message_thread_id": thread}
        if attachment.is_voice:
            # Telegram shows a voice note only for OGG/Opus sent with sendVoice (field "voice").
            duration = round(attachment.duration_s) if attachment.duration_s else None
            return await self._call(
                bot.send_voice, chat_id, data, duration=duration, filename=name or "voice.ogg", **common
            )
        if attachment.mime_type.startswith("audio/"):
            return await self._call(bot.send_audio, chat_id, data, filename=name or "audio", **common)
        return await self._call(bot.send_document, chat_id, data, filename=name or "file", **common)

    async def _call(self, method, *args, **kwargs):  # type: ignore[no-untyped-def]
        """Run one Bot API call, turning the library's errors into ``SendError``."""
        try:
            return await method(*args, **kwargs)
        except RetryAfter as exc:
            wait = exc.retry_after
            seconds = wait.total_seconds() if isinstance(wait, dt.timedelta) else float(wait)
            raise RateLimitedError(f"telegram flood control: {exc}", retry_after=seconds) from exc
        except (InvalidToken, Forbidden, BadRequest) as exc:
            raise SendError(f"telegram refused: {exc}", permanent=True) from exc
        except (NetworkError, TelegramError) as exc:
            raise SendError(f"telegram unreachable: {exc}") from exc

    async def aclose(self) -> None:
        if self._initialised:
            await self._bot.shutdown()
        await self._limits.aclose()
