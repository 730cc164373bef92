"""Downloading a file a user sent (a voice message), from that platform's own file host and nowhere else.

A platform event names the file; the worker fetches it. Three rules keep a bot token where it belongs:

- **Only the platform's file hosts**: Telegram's Bot API host, Slack's ``files.slack.com``, Discord's
  CDN. A signed Slack event naming ``http://127.0.0.1:6379/`` gets nothing, and no token. The hosts
  follow the base-URL settings the adapters already use (``TELEGRAM_API_BASE_URL``,
  ``SLACK_API_BASE_URL``, ``DISCORD_API_BASE_URL``), so the simulators work unchanged.
- **Redirects are followed only to those hosts** (at most three), never to another.
- **The token goes only to that host**: Telegram's download URL contains the token, so the envelope
  carries the file id and the URL is built here, at download time, and never logged or stored; Slack
  gets ``Authorization: Bearer``; Discord's CDN needs no token.

The body is size-limited while it streams (``PATCHBAY_MAX_DOWNLOAD_BYTES``). Errors say what went
wrong without the URL: ``DownloadError`` never carries a token.
"""

from __future__ import annotations

import logging
from typing import ClassVar
from urllib.parse import urljoin, urlsplit

import httpx
from pydantic import AliasChoices, Field

from adapters.discord.settings import DiscordSettings
from adapters.slack.settings import SlackSettings
from adapters.telegram.settings import TelegramSettings
from gateway.shared.config import PatchbaySettings
from gateway.shared.envelope import Attachment, Platform

__all__ = ["DownloadError", "DownloadSettings", "allowed_origins", "download"]

log = logging.getLogger(__name__)

_MAX_REDIRECTS = 3
_DEFAULT_ORIGINS = {
    "telegram": {"https://api.telegram.org"},
    "slack": {"https://files.slack.com"},
    "discord": {"https://cdn.discordapp.com", "https://media.discordapp.net"},
}


class DownloadSettings(PatchbaySettings):
    TOML_SECTION: ClassVar[str] = "downloads"

    max_bytes: int = Field(
        default=20 * 1024 * 1024,
        gt=0,
        validation_alias=AliasChoices("PATCHBAY_MAX_DOWNLOAD_BYTES", "max_bytes"),
        description="largest file a worker downloads (Telegram's own bot download limit is 20 MB)",
    )
    timeout_s: float = Field(
        default=30.0, gt=0, validation_alias=AliasChoices("PATCHBAY_DOWNLOAD_TIMEOUT", "timeout_s")
    )


class DownloadError(Exception):
    """A file that could not be fetched; the message names the reason, never the URL.

    ``reason`` is a short code for counters and analytics: ``foreign_host``, ``too_large`` or ``failed``.
    """

    def __init__(self, message: str, reason: str = "failed") -> None:
        super().__init__(message)
        self.reason = reason


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    default_port = {"http": 80, "https": 443}[parts.scheme]
    port = parts.port or default_port
    host = parts.hostname.lower()
    return f"{parts.scheme}://{host}" if port == default_port else f"{parts.scheme}://{host}:{port}"


def allowed_origins(platform: str) -> set[str]:
    """The origins files of ``platform`` may come from: its own hosts, or the configured (simulator) base URL."""
    if platform == Platform.TELEGRAM:
        return {_origin(TelegramSettings().api_root)}
    base = {Platform.SLACK: SlackSettings().api_base_url, Platform.DISCORD: DiscordSettings().api_base_url}.get(
        Platform(platform)
    )
    origins = set(_DEFAULT_ORIGINS.get(str(platform), set()))
    if base is not None:
        configured = _origin(base)
        if configured not in ("https://slack.com", "https://discord.com"):
            origins.add(configured)  # a simulator (or a proxy) serves the API and its files itself
    return origins


async def download(attachment: Attachment, platform: str, *, settings: DownloadSettings | None = None) -> bytes:
    """The bytes of ``attachment`` as ``platform`` serves them; ``DownloadError`` on any refusal or failure."""
    settings = settings or DownloadSettings()
    if attachment.data_b64 is not None:
        return attachment.data()
    origins = allowed_origins(platform)
    headers: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=settings.timeout_s, follow_redirects=False) as client:
        if platform == Platform.TELEGRAM:
            url = await _telegram_file_url(client, attachment)
        else:
            url = attachment.url or ""
            if platform == Platform.SLACK and (token := SlackSettings().bot_token):
                headers["Authorization"] = f"Bearer {token}"  # sent only to Slack's hosts: checked below
        return await _fetch(client, url, headers, origins, settings.max_bytes)


async def _telegram_file_url(client: httpx.AsyncClient, attachment: Attachment) -> str:
    telegram = TelegramSettings()
    if not telegram.bot_token:
        raise DownloadError("telegram: TELEGRAM_BOT_TOKEN is not set in this worker")
    if not attachment.file_id:
        raise DownloadError("telegram: the attachment carries no file id")
    root = telegram.api_root
    try:
        response = await client.post(f"{root}/bot{telegram.bot_token}/getFile", data={"file_id": attachment.file_id})
        answer = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise DownloadError(f"telegram: getFile failed ({type(exc).__name__})") from None
    if not answer.get("ok"):
        raise DownloadError(f"telegram: getFile refused ({answer.get('error_code')}: {answer.get('description')})")
    path = str((answer.get("result") or {}).get("file_path") or "")
    if not path or path.startswith("/") or ".." in path.split("/") or "://" in path:
        raise DownloadError("telegram: getFile returned no usable file path")
    return f"{root}/file/bot{telegram.bot_token}/{path}"


async def _fetch(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], origins: set[str], max_bytes: int
) -> bytes:
    for _ in range(_MAX_REDIRECTS + 1):
        if _origin(url) not in origins:
            raise DownloadError("the file is not on the platform's own file host; not downloaded", "foreign_host")
        try:
            async with client.stream("GET", url, headers=headers) as response:
                if response.is_redirect:
                    url = urljoin(url, response.headers.get("location", ""))
                    continue
                if response.status_code != 200:
                    raise DownloadError(f"the file host answered {response.status_code}")
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                    raise DownloadError(f"the file is larger than {max_bytes:,} bytes", "too_large")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise DownloadError(f"the file is larger than {max_bytes:,} bytes", "too_large")
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.HTTPError as exc:
            # httpx's message includes the URL, and a Telegram file URL includes the token: name the kind only.
            raise DownloadError(f"download failed ({type(exc).__name__})") from None
    raise DownloadError(f"more than {_MAX_REDIRECTS} redirects")
