"""Streaming on Discord: "typing…", one message posted with the first words, edited as text arrives.

``POST /channels/{id}/typing`` lasts 10 s (refreshed every 8 s until the first words show). The
message is posted once and then edited (``PATCH /channels/{id}/messages/{id}``), at most once per
``[streaming] edit_interval_s`` (1 s: Discord's channel bucket allows 5 edits per 5 s) and only when
the central send limits admit it. The final edit holds the complete first part (2,000 characters);
an answer that outgrows it continues in new messages, and a voice note follows as a message of its own.

Exactly one answer after a worker's death: the post carries a nonce derived from the message key
with ``enforce_nonce``, so Discord answers a repeated post with the message it already created
(for a few minutes), and the message id is recorded in the ledger as soon as it is known; a
redelivered message edits that same message.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
from discord.http import handle_message_parameters

from adapters.base import SendError
from adapters.egress_limits import EgressLimits
from adapters.live import first_part
from adapters.text import PLATFORM_LIMITS, split_message
from gateway.shared.envelope import Reply

if TYPE_CHECKING:
    from adapters.discord.sender import DiscordSender

__all__ = ["TYPING_EVERY_S", "DiscordLive", "nonce_for"]

TYPING_EVERY_S = 8.0  # Discord shows typing for 10 s


def nonce_for(message_key: str) -> str:
    """Discord nonces are at most 25 characters: the same one for every attempt at one message."""
    return hashlib.sha256(message_key.encode()).hexdigest()[:25]


class DiscordLive:
    platform = "discord"
    is_group = False
    typing_every_s: float | None = TYPING_EVERY_S

    def __init__(self, sender: DiscordSender, stub: Reply, resume: str, interval_s: float) -> None:
        self._sender = sender
        self.channel = stub.thread_id or stub.conversation_id
        self.chat_id = self.channel
        self.interval_s: float | None = interval_s
        self.limits: EgressLimits | None = sender.limits
        self.nonce = nonce_for(stub.in_reply_to_key)
        state = json.loads(resume) if resume else {}
        self.message_id: str | None = state.get("message_id")
        self._reference: dict[str, Any] | None = None
        if stub.reply_to:
            self._reference = {"message_id": stub.reply_to, "channel_id": self.channel, "fail_if_not_exists": False}
            if stub.hints.get("guild_id"):
                self._reference["guild_id"] = stub.hints["guild_id"]
        self._showing = ""

    def handle(self) -> str:
        return json.dumps({"nonce": self.nonce, "message_id": self.message_id})

    async def typing(self) -> None:
        http = await self._sender.http()
        await _mapped(http.send_typing(self.channel))

    async def show(self, text: str) -> None:
        first = first_part(text, "discord")
        if not first or first == self._showing:
            return
        await self._put(first)

    async def _put(self, content: str) -> None:
        http = await self._sender.http()
        if self.message_id is None:
            params = handle_message_parameters(
                content=content,
                nonce=self.nonce,
                message_reference=self._reference if self._reference else discord.utils.MISSING,  # type: ignore[arg-type]
                allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=True, replied_user=True),
            )
            params.payload["enforce_nonce"] = True  # type: ignore[index]  # a repeat returns the first message
            with params:
                data = await _mapped(http.send_message(self.channel, params=params))
            self.message_id = str(data["id"])
        else:
            params = handle_message_parameters(content=content)
            with params:
                await _mapped(http.edit_message(self.channel, self.message_id, params=params))
        self._showing = content

    async def finish(self, reply: Reply) -> list[str]:
        if self.message_id is None and not self._showing:
            return await self._sender.send(reply)  # nothing showing: the ordinary send
        limit, measure = PLATFORM_LIMITS["discord"]
        parts = split_message(reply.text, limit, measure=measure) or ["…"]
        assert self.limits is not None
        if parts[0] != self._showing or self.message_id is None:
            await self.limits.call("discord", self.channel, lambda: self._put(parts[0]))
        assert self.message_id is not None
        sent = [self.message_id]
        rest = reply.model_copy(update={"text": "\n\n".join(parts[1:]), "reply_to": None})
        if rest.text or rest.attachments:  # the rest of a long answer, then the voice note
            sent += await self._sender.send(rest)
        return sent


async def _mapped(request: Any) -> Any:
    from adapters.discord.sender import _send_error

    try:
        return await request
    except discord.HTTPException as exc:
        raise _send_error(exc) from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise SendError(f"discord unreachable: {exc}") from exc
