"""The outbound half on Slack: ``chat.postMessage`` in the thread, split, as Block Kit markdown; files via the upload API."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from adapters.base import SendError
from adapters.egress_limits import EgressLimits, RateLimitedError
from adapters.live import LiveTarget, StreamingSettings
from adapters.slack.blocks import render_markdown
from adapters.slack.settings import SlackSettings
from gateway.shared.envelope import Reply

__all__ = ["SlackSender"]

log = logging.getLogger(__name__)

_PERMANENT = {"channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "not_authed", "token_revoked"}


class SlackSender:
    platform = "slack"

    def __init__(self, settings: SlackSettings, limits: EgressLimits) -> None:
        if not settings.bot_token:
            raise ValueError("SLACK_BOT_TOKEN is not set")
        self._client = AsyncWebClient(token=settings.bot_token, base_url=settings.api_root)
        self._limits = limits

    async def send(self, reply: Reply) -> list[str]:
        channel = reply.conversation_id
        thread_ts = reply.hints.get("thread_ts") or reply.thread_id or reply.reply_to
        sent: list[str] = []
        # Split, then each part is one Block Kit markdown block; ``text`` is the notification's plain fallback.
        for part in render_markdown(reply.text):
            post = functools.partial(
                self._client.chat_postMessage, channel=channel, text=part.text, blocks=part.blocks, thread_ts=thread_ts
            )
            response = await self._limits.call("slack", channel, functools.partial(self._call, post))
            sent.append(str(response.get("ts")))
        for index, attachment in enumerate(reply.attachments):
            extension = "ogg" if "ogg" in attachment.mime_type else attachment.mime_type.rsplit("/", 1)[-1]
            filename = attachment.filename or f"{'voice' if attachment.is_voice else 'file'}-{index + 1}.{extension}"
            upload = functools.partial(
                self._client.files_upload_v2,
                channel=channel,
                thread_ts=thread_ts,
                file=attachment.data(),
                filename=filename,
                title=filename,
            )
            response = await self._limits.call("slack", channel, functools.partial(self._call, upload))
            file_info = response.get("file") or {}
            sent.append(str(file_info.get("id", "")))
        return sent

    @property
    def limits(self) -> EgressLimits:
        return self._limits

    def live(self, stub: Reply, resume: str, settings: StreamingSettings) -> LiveTarget:
        """The streamed view of the reply ``stub`` addresses (``adapters.slack.live``)."""
        from adapters.slack.live import SlackLive

        return SlackLive(self, self._client, stub, resume, settings.edit_interval_s, settings.slack_status)

    async def call(self, request: Callable[[], Awaitable[AsyncSlackResponse]]) -> AsyncSlackResponse:
        """One Web API call with this sender's error mapping (429 → ``RateLimitedError``)."""
        return await self._call(request)

    async def _call(self, request: Callable[[], Awaitable[AsyncSlackResponse]]) -> AsyncSlackResponse:
        try:
            return await request()
        except SlackApiError as exc:
            response: Any = exc.response
            if response.status_code == 429:
                retry_after = float(response.headers.get("Retry-After", 1))
                raise RateLimitedError(f"slack rate limited: {response.get('error')}", retry_after=retry_after) from exc
            error = response.get("error")
            raise SendError(f"slack refused: {error}", permanent=error in _PERMANENT) from exc
        except (SlackRequestError, OSError) as exc:
            raise SendError(f"slack unreachable: {exc}") from exc

    async def aclose(self) -> None:
        await self._limits.aclose()
