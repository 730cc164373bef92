"""The inbound half on Discord: a discord.py client on the gateway with the message-content intent."""

from __future__ import annotations

import asyncio
import logging

import discord

from adapters.base import AdapterState, Admit, Health, Rate
from adapters.discord.normalise import addressed_to_bot, to_envelope
from adapters.discord.reactions import to_rating
from adapters.discord.settings import DiscordSettings
from adapters.ordering import ChatOrder
from adapters.ratings import RatingDesk
from adapters.supervisor import Supervisor

__all__ = ["DiscordAdapter", "DiscordTokenRefused"]

log = logging.getLogger(__name__)


class DiscordTokenRefused(Exception):
    """The gateway closed with 4004 (authentication failed) or 4014 (intent not enabled for this bot)."""


class _Client(discord.Client):
    def __init__(self, adapter: DiscordAdapter) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # privileged: enable it in the developer portal too
        intents.reactions = True  # in the defaults already; the satisfaction ratings depend on it
        super().__init__(intents=intents)
        self.adapter = adapter

    async def on_ready(self) -> None:
        self.adapter.connected(f"as {self.user}")

    async def on_resumed(self) -> None:
        self.adapter.connected("resumed")

    async def on_disconnect(self) -> None:
        self.adapter.disconnected()

    async def on_message(self, message: discord.Message) -> None:
        await self.adapter.on_message(self, message)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        # The raw event, not on_reaction_add: that one fires only for messages still in discord.py's cache.
        await self.adapter.on_reaction(self, payload)


class DiscordAdapter:
    platform = "discord"

    def __init__(self, settings: DiscordSettings, admit: Admit | None = None) -> None:
        if not settings.bot_token:
            raise ValueError("DISCORD_BOT_TOKEN is not set")
        self.settings = settings
        self._token = settings.bot_token
        self._admit = admit
        self._ratings = RatingDesk("discord")
        self._channels = set(settings.channels)
        self._order = ChatOrder()
        self._supervisor = Supervisor(
            "discord", auth_errors=(discord.LoginFailure, discord.PrivilegedIntentsRequired, DiscordTokenRefused)
        )
        self.counters: dict[str, int] = {"admitted": 0, "ignored": 0, "notices": 0, "errors": 0, "disconnects": 0}
        # Reactions that are no rating, by reason; a rating that could not be recorded is a rating_error.

    def health(self) -> Health:
        health = self._supervisor.health()
        health.extra.update(self.counters, **self._ratings.figures())
        return health

    def connected(self, detail: str) -> None:
        self._supervisor.set_state(AdapterState.CONNECTED, detail)

    def disconnected(self) -> None:
        # discord.py reconnects by itself; we only make the gap visible.
        self.counters["disconnects"] += 1
        if not self._supervisor.stopping.is_set():
            self._supervisor.set_state(AdapterState.RETRYING, "gateway disconnected; discord.py is reconnecting")

    async def start(self, admit: Admit, rate: Rate | None = None) -> None:
        self._admit = admit
        self._ratings.rate = rate
        await self._supervisor.run(self._run_once)

    async def stop(self) -> None:
        self._supervisor.stop()

    async def _run_once(self) -> None:
        self.settings.point_library_here()
        client = _Client(self)
        try:
            await client.login(self._token)  # GET /users/@me: 401 raises LoginFailure
            connection = asyncio.create_task(client.connect(reconnect=True))
            stopping = asyncio.create_task(self._supervisor.stopping.wait())
            done, _ = await asyncio.wait({connection, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if connection in done:
                error = connection.exception()
                if isinstance(error, discord.ConnectionClosed) and error.code in (4004, 4014):
                    raise DiscordTokenRefused(f"gateway closed with {error.code}") from error
                if error is not None:
                    raise error
                raise ConnectionError("the gateway connection ended")
        finally:
            await client.close()

    async def on_message(self, client: discord.Client, message: discord.Message) -> None:
        me = client.user
        if me is None or self._admit is None:
            return
        if not addressed_to_bot(message, me, self._channels):
            self.counters["ignored"] += 1
            return
        envelope = to_envelope(message, me)
        async with self._order.hold(message.channel.id):  # discord.py runs each event as its own task
            # The gateway socket never redelivers: an outage spools the message on the gateway's disk.
            result = await self._admit(envelope, spool=True)
        self.counters["admitted"] += 1
        if result.notice:
            self.counters["notices"] += 1
            try:
                await message.reply(result.notice, mention_author=False)
            except discord.HTTPException as exc:
                self.counters["errors"] += 1
                log.warning("discord: could not post a rate-limit notice: %s", exc)

    async def on_reaction(self, client: discord.Client, payload: discord.RawReactionActionEvent) -> None:
        me = client.user
        if me is None:
            self._ratings.ignore("not_ready")  # discord.py dispatches events only after READY: not expected
            return
        rating = to_rating(payload, me.id)
        if isinstance(rating, str):
            self._ratings.ignore(rating)
            return
        await self._ratings.record(rating)
