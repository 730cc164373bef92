"""The outbound half on Discord: REST through discord.py's ``HTTPClient`` (no gateway connection needed).

Any worker on any machine can answer: a message is a ``POST /channels/{id}/messages`` with the bot
token. Replies reference the original message; in a thread they go to the thread. A 429 seen on
the wire (aiohttp trace hook) sets the shared pause in Redis so every worker holds back, while
discord.py itself waits ``retry_after`` and retries the request.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from types import SimpleNamespace
from typing import Any

import aiohttp
import discord
from discord.http import HTTPClient, handle_message_parameters

from adapters.base import SendError
from adapters.discord.formatting import render_markdown
from adapters.discord.settings import DiscordSettings
from adapters.egress_limits import EgressLimits, RateLimitedError
from adapters.live import LiveTarget, StreamingSettings
from gateway.shared.envelope import Attachment, Reply

__all__ = ["DiscordSender"]

log = logging.getLogger(__name__)

_CHANNEL_IN_PATH = re.compile(r"/channels/(\d+)/")


class DiscordSender:
    platform = "discord"

    def __init__(self, settings: DiscordSettings, limits: EgressLimits) -> None:
        if not settings.bot_token:
            raise ValueError("DISCORD_BOT_TOKEN is not set")
        self.settings = settings
        self._token = settings.bot_token
        self._limits = limits
        self._http: HTTPClient | None = None
        self._login = asyncio.Lock()

    async def _client(self) -> HTTPClient:
        async with self._login:
            if self._http is None:
                self.settings.point_library_here()
                trace = aiohttp.TraceConfig()
                trace.on_request_end.append(self._on_request_end)
                http = HTTPClient(asyncio.get_running_loop(), http_trace=trace)
                try:
                    await http.static_login(self._token)
                except discord.LoginFailure as exc:
                    await http.close()
                    raise SendError(f"discord refused the bot token: {exc}", permanent=True) from exc
                except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
                    await http.close()
                    raise SendError(f"discord unreachable: {exc}") from exc
                self._http = http
            return self._http

    async def _on_request_end(
        self, session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        if params.response.status != 429:
            return
        retry_after = float(params.response.headers.get("Retry-After", "1"))
        whole = params.response.headers.get("X-RateLimit-Global", "").lower() == "true"
        match = _CHANNEL_IN_PATH.search(params.url.path)
        chat = None if whole or match is None else match.group(1)
        await self._limits.pause("discord", retry_after, chat_id=chat)

    @property
    def limits(self) -> EgressLimits:
        return self._limits

    async def http(self) -> HTTPClient:
        return await self._client()

    def live(self, stub: Reply, resume: str, settings: StreamingSettings) -> LiveTarget:
        """The streamed view of the reply ``stub`` addresses (``adapters.discord.live``)."""
        from adapters.discord.live import DiscordLive

        return DiscordLive(self, stub, resume, settings.edit_interval_s)

    async def send(self, reply: Reply) -> list[str]:
        http = await self._client()
        channel = reply.thread_id or reply.conversation_id
        reference: dict[str, Any] | None = None
        if reply.reply_to:
            reference = {"message_id": reply.reply_to, "channel_id": channel, "fail_if_not_exists": False}
            if reply.hints.get("guild_id"):
                reference["guild_id"] = reply.hints["guild_id"]
        chunks = render_markdown(reply.text)
        sent: list[str] = []
        for index, chunk in enumerate(chunks):
            # Attachments ride on the last text message, or on a message of their own.
            files = reply.attachments if index == len(chunks) - 1 else []
            sent.append(await self._post(http, channel, chunk, reference if index == 0 else None, files))
        if not chunks and reply.attachments:
            sent.append(await self._post(http, channel, None, reference, reply.attachments))
        return sent

    async def _post(
        self,
        http: HTTPClient,
        channel: str,
        content: str | None,
        reference: dict[str, Any] | None,
        attachments: list[Attachment],
    ) -> str:
        async def once() -> str:
            files = [_as_file(a, i) for i, a in enumerate(attachments)]
            params = handle_message_parameters(
                content=content,
                files=files or discord.utils.MISSING,
                # The library sends this as-is; its own abc.send passes the same plain dict.
                message_reference=reference if reference else discord.utils.MISSING,  # type: ignore[arg-type]
                allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=True, replied_user=True),
            )
            try:
                with params:
                    data = await http.send_message(channel, params=params)
            except discord.HTTPException as exc:
                raise _send_error(exc) from exc
            except (aiohttp.ClientError, OSError) as exc:
                raise SendError(f"discord unreachable: {exc}") from exc
            return str(data["id"])

        return await self._limits.call("discord", channel, once)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
        await self._limits.aclose()


def _as_file(attachment: Attachment, index: int) -> discord.File:
    extension = "ogg" if "ogg" in attachment.mime_type else attachment.mime_type.rsplit("/", 1)[-1]
    name = attachment.filename or f"{'voice' if attachment.is_voice else 'file'}-{index + 1}.{extension}"
    return discord.File(io.BytesIO(attachment.data()), filename=name)


def _send_error(exc: discord.HTTPException) -> SendError:
    if exc.status == 429:
        # Only when discord.py did not retry it itself (no Via header: a Cloudflare-level limit).
        retry_after = float(exc.response.headers.get("Retry-After", "5"))
        return RateLimitedError(f"discord rate limited: {exc}", retry_after=retry_after)
    return SendError(f"discord refused: {exc}", permanent=400 <= exc.status < 500)
