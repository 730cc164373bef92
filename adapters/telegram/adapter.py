"""The inbound half on Telegram: long polling, or webhook mode behind the gateway (python-telegram-bot's Bot).

Either way an update is confirmed to Telegram only after admission stored it: polling advances its
offset past a batch once every update of it is in the ledger or the gateway's spool; the webhook
answers 2xx once the update is in the ledger, 503 (Telegram redelivers) when Redis is away.
Updates of one chat are admitted in the order Telegram sent them; chats run side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from telegram import Bot, ReplyParameters, Update
from telegram.error import InvalidToken, TelegramError
from telegram.request import HTTPXRequest

from adapters.base import AdapterState, Admission, Admit, AdmitResult, Health, Rate
from adapters.ordering import ChatOrder
from adapters.supervisor import Supervisor
from adapters.telegram.normalise import addressed_to_bot, to_envelope
from adapters.telegram.settings import TelegramSettings

__all__ = ["TelegramAdapter"]

log = logging.getLogger(__name__)

_POLL_TIMEOUT_S = 25  # seconds the Bot API may hold a getUpdates request open


class TelegramAdapter:
    platform = "telegram"

    def __init__(self, settings: TelegramSettings, admit: Admit | None = None) -> None:
        if not settings.bot_token:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        self.settings = settings
        self._token = settings.bot_token
        self._admit = admit
        self._supervisor = Supervisor("telegram", auth_errors=(InvalidToken,))
        self._bot: Bot | None = None
        self._order = ChatOrder()  # webhook requests of one chat are admitted in arrival order
        self._notices: set[asyncio.Task[None]] = set()
        self.counters: dict[str, int] = {"admitted": 0, "ignored": 0, "notices": 0, "errors": 0, "unavailable": 0}

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

    def _build(self) -> Bot:
        root = self.settings.api_root
        # Long polling holds its request open for poll_timeout_s; its own connection, with room to answer.
        polling = HTTPXRequest(connection_pool_size=1, read_timeout=_POLL_TIMEOUT_S + 10)
        return Bot(self._token, base_url=f"{root}/bot", base_file_url=f"{root}/file/bot", get_updates_request=polling)

    async def _run_once(self) -> None:
        bot = self._build()
        await bot.initialize()  # getMe: an invalid token raises InvalidToken here
        try:
            if self.webhook_mode:
                assert self.settings.webhook_url is not None
                await bot.set_webhook(
                    self.settings.webhook_url,
                    secret_token=self.settings.effective_webhook_secret,
                    allowed_updates=["message"],
                )
                self._bot = bot
                self._supervisor.set_state(AdapterState.CONNECTED, f"@{bot.username}")
                await self._supervisor.stopping.wait()
            else:
                await bot.delete_webhook()
                self._bot = bot
                self._supervisor.set_state(AdapterState.CONNECTED, f"@{bot.username}")
                await self._poll(bot)
        finally:
            self._bot = None
            await bot.shutdown()

    async def _poll(self, bot: Bot) -> None:
        """Long polling that confirms a batch (the next offset) only once every update in it is stored.

        python-telegram-bot's own Updater confirms an update as soon as it is fetched, before the
        handler runs; an update fetched during a Redis outage was then confirmed and lost.
        """
        offset: int | None = None
        delay = 1.0
        while not self._supervisor.stopping.is_set():
            try:
                updates = await self._fetch_unless_stopping(bot, offset)
                if updates is None:
                    return  # stopping: the batch in flight was not confirmed, so Telegram serves it again
            except InvalidToken:
                raise
            except TelegramError as exc:
                self.counters["errors"] += 1
                log.warning("telegram: polling failed, retrying in %.0fs: %s", delay, exc)
                self._supervisor.set_state(AdapterState.RETRYING, f"polling: {exc}")
                await self._pause(delay)
                delay = min(delay * 2, 60.0)
                continue
            delay = 1.0
            if self._supervisor.health().state == AdapterState.RETRYING:
                self._supervisor.set_state(AdapterState.CONNECTED, "polling recovered")
            if updates:
                await self._store_batch(bot, updates)
                offset = updates[-1].update_id + 1

    async def _fetch_unless_stopping(self, bot: Bot, offset: int | None) -> tuple[Update, ...] | None:
        """One long poll, given up as soon as the adapter stops (a shutdown would wait out the 25 s poll)."""
        fetch = asyncio.ensure_future(
            bot.get_updates(offset=offset, timeout=_POLL_TIMEOUT_S, allowed_updates=["message"])
        )
        stopping = asyncio.ensure_future(self._supervisor.stopping.wait())
        try:
            await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not fetch.done():
            fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError, TelegramError):
                await fetch
            return None
        return fetch.result()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._supervisor.stopping.wait(), seconds)

    async def _store_batch(self, bot: Bot, updates: tuple[Update, ...]) -> None:
        """Chats side by side, each chat's updates in order; raises (nothing confirmed) if one cannot be stored."""
        chats: dict[object, list[Update]] = {}
        for update in updates:
            chat = update.effective_chat
            chats.setdefault(chat.id if chat else update.update_id, []).append(update)

        async def one_chat(chat_updates: list[Update]) -> None:
            for update in chat_updates:
                try:
                    await self._admit_update(bot, update, spool=True)
                except OSError:
                    raise  # the spool could not write: do not confirm, Telegram keeps the update
                except Exception:
                    # A bug for one update must not hold up the others for ever: recorded, then confirmed.
                    self.counters["errors"] += 1
                    log.exception("telegram: update %s could not be admitted; skipped", update.update_id)

        await asyncio.gather(*(one_chat(chat_updates) for chat_updates in chats.values()))

    async def handle_webhook_update(self, data: dict[str, Any]) -> bool:
        """An Update POSTed to the gateway; True once it is stored, False when it could not be (answer 503)."""
        bot = self._bot
        if bot is None:
            return False
        update = Update.de_json(data, bot)
        chat = update.effective_chat
        async with self._order.hold(chat.id if chat else update.update_id):
            result = await self._admit_update(bot, update, spool=False)
        return result is None or result.decision is not Admission.UNAVAILABLE

    async def _admit_update(self, bot: Bot, update: Update, *, spool: bool) -> AdmitResult | None:
        message = update.message
        if message is None or self._admit is None:
            return None
        if not addressed_to_bot(message, bot.id, bot.username):
            self.counters["ignored"] += 1
            return None
        envelope = await to_envelope(message, bot, self.counters)
        result = await self._admit(envelope, spool=spool)
        if result.decision is Admission.UNAVAILABLE:
            self.counters["unavailable"] += 1
            return result
        self.counters["admitted"] += 1
        if result.notice:
            notice = asyncio.create_task(
                self._post_notice(bot, message.chat.id, message.message_id, result.notice, envelope.hints)
            )
            self._notices.add(notice)
            notice.add_done_callback(self._notices.discard)
        return result

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
