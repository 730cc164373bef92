"""The inbound half on Telegram: python-telegram-bot long polling, or webhook mode behind the gateway."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from telegram import Bot, ReplyParameters, Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application, ApplicationBuilder, TypeHandler
from telegram.request import HTTPXRequest

from adapters.base import AdapterState, Admit, Health, Rate
from adapters.supervisor import Supervisor
from adapters.telegram.normalise import addressed_to_bot, to_envelope
from adapters.telegram.ordering import PerChatOrder
from adapters.telegram.settings import TelegramSettings

__all__ = ["TelegramAdapter"]

log = logging.getLogger(__name__)


class _PollingRequest(HTTPXRequest):
    """The getUpdates connection, reporting every answer the Bot API gives.

    python-telegram-bot retries a failed poll by itself and tells us only about failures
    (``error_callback``); a poll that succeeds again after an outage is the only sign that the
    platform is back, and without it /healthz would say "retrying" until the next user message.
    """

    def __init__(self, on_answer: Callable[[int], None]) -> None:
        super().__init__(connection_pool_size=1)  # what ApplicationBuilder gives getUpdates by default
        self._on_answer = on_answer

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        status, payload = await super().do_request(*args, **kwargs)
        self._on_answer(status)
        return status, payload


class TelegramAdapter:
    platform = "telegram"

    def __init__(self, settings: TelegramSettings, admit: Admit | None = None) -> None:
        if not settings.bot_token:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        self.settings = settings
        self._token = settings.bot_token
        self._admit = admit
        self._supervisor = Supervisor("telegram", auth_errors=(InvalidToken,))
        self._app: Application[Any, Any, Any, Any, Any, Any] | None = None
        self.counters: dict[str, int] = {"admitted": 0, "ignored": 0, "notices": 0, "errors": 0}

    @property
    def webhook_mode(self) -> bool:
        return bool(self.settings.webhook_url)

    def health(self) -> Health:
        health = self._supervisor.health()
        health.extra.update(self.counters, mode="webhook" if self.webhook_mode else "polling")
        return health

    async def start(self, admit: Admit, rate: Rate | None = None) -> None:
        # ``rate`` is accepted for the common signature only: Telegram bots are not told about reactions
        # unless they ask for message_reaction updates, which this adapter does not.
        del rate
        self._admit = admit
        await self._supervisor.run(self._run_once)

    async def stop(self) -> None:
        self._supervisor.stop()

    def _build(self) -> Application[Any, Any, Any, Any, Any, Any]:
        root = self.settings.api_root
        builder = ApplicationBuilder().token(self._token).base_url(f"{root}/bot").base_file_url(f"{root}/file/bot")
        if self.webhook_mode:
            builder = builder.updater(None)
        else:
            builder = builder.get_updates_request(_PollingRequest(self._polling_answered))
        app = builder.concurrent_updates(PerChatOrder()).build()
        app.add_handler(TypeHandler(Update, self._on_update))
        return app

    async def _run_once(self) -> None:
        app = self._build()
        await app.initialize()  # getMe: an invalid token raises InvalidToken here
        try:
            if self.webhook_mode:
                assert self.settings.webhook_url is not None
                await app.bot.set_webhook(
                    self.settings.webhook_url,
                    secret_token=self.settings.effective_webhook_secret,
                    allowed_updates=["message"],
                )
            else:
                assert app.updater is not None
                await app.updater.start_polling(allowed_updates=["message"], error_callback=self._polling_error)
            await app.start()
            self._app = app
            self._supervisor.set_state(AdapterState.CONNECTED, f"@{app.bot.username}")
            await self._supervisor.stopping.wait()
        finally:
            self._app = None
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
            await app.shutdown()

    def _polling_answered(self, status: int) -> None:
        if status == 200 and self._supervisor.health().state == AdapterState.RETRYING:
            self._supervisor.set_state(AdapterState.CONNECTED, "polling recovered")

    def _polling_error(self, error: TelegramError) -> None:
        # The Updater retries by itself; we only make the outage visible.
        self.counters["errors"] += 1
        log.warning("telegram: polling failed, the library retries: %s", error)
        self._supervisor.set_state(AdapterState.RETRYING, f"polling: {error}")

    async def handle_webhook_update(self, data: dict[str, Any]) -> bool:
        """An Update POSTed to the gateway; False when the adapter is not running to take it."""
        app = self._app
        if app is None:
            return False
        update = Update.de_json(data, app.bot)
        # Through the same per-chat order as polled updates: requests that arrive in order are admitted in order.
        await app.update_processor.process_update(update, app.process_update(update))
        return True

    async def _on_update(self, update: Update, context: Any) -> None:
        message = update.message
        app = self._app
        if message is None or app is None or self._admit is None:
            return
        if self._supervisor.health().state == AdapterState.RETRYING:
            self._supervisor.set_state(AdapterState.CONNECTED, "polling recovered")
        bot = app.bot
        if not addressed_to_bot(message, bot.id, bot.username):
            self.counters["ignored"] += 1
            return
        envelope = await to_envelope(message, bot, self.counters)
        result = await self._admit(envelope)
        self.counters["admitted"] += 1
        if result.notice:
            await self._post_notice(bot, message.chat.id, message.message_id, result.notice, envelope.hints)

    async def _post_notice(self, bot: Bot, chat_id: int, message_id: int, text: str, hints: dict[str, Any]) -> None:
        self.counters["notices"] += 1
        try:
            await bot.send_message(
                chat_id,
                text,
                reply_parameters=ReplyParameters(message_id, allow_sending_without_reply=True),
                message_thread_id=hints.get("message_thread_id"),
            )
        except TelegramError as exc:
            self.counters["errors"] += 1
            log.warning("telegram: could not post a rate-limit notice to %s: %s", chat_id, exc)
