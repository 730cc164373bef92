"""Streaming on Slack: the assistant status while the answer is prepared, then a streamed message.

- "Typing…": ``assistant.threads.setStatus`` where the app has Slack's assistant feature; an app
  without it (``missing_scope``, ``not_allowed_token_type``…) is asked once per process, then nothing.
- The answer: ``chat.startStream`` in the thread with the first words, ``chat.appendStream`` with what
  was written since (each append at most once per ``[streaming] edit_interval_s`` and only when the
  channel's central send limit admits it), ``chat.stopStream`` with the rest of the first part. The
  stream speaks standard Markdown (``markdown_text``). An answer longer than a message continues in
  new messages, through the sender's ordinary path; a voice note follows.

Exactly one answer after a worker's death: the stream's ``ts`` is recorded in the ledger as soon as
Slack returns it, and a redelivered message finishes that message (``chat.stopStream``, then
``chat.update`` with the complete text, since what the dead worker appended is unknown). Slack has no
idempotency key for ``chat.startStream``: a worker that dies between Slack's answer and the ledger
write (one round trip) leaves a stream the next attempt cannot find, and the answer is posted again.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from slack_sdk.web.async_client import AsyncWebClient

from adapters.base import SendError
from adapters.egress_limits import EgressLimits
from adapters.live import first_part
from adapters.text import PLATFORM_LIMITS, split_message
from gateway.shared.envelope import Reply

if TYPE_CHECKING:
    from adapters.slack.sender import SlackSender

__all__ = ["STATUS_TEXT", "SlackLive"]

STATUS_TEXT = "is thinking…"
_NO_STATUS = {"missing_scope", "not_allowed_token_type", "unknown_method", "method_deprecated", "no_permission"}


class SlackLive:
    platform = "slack"
    is_group = False
    status_unavailable: ClassVar[bool] = False  # learnt once per process: this app has no assistant status

    def __init__(
        self, sender: SlackSender, client: AsyncWebClient, stub: Reply, resume: str, interval_s: float, status: bool
    ) -> None:
        self._sender = sender
        self._client = client
        self.channel = stub.conversation_id
        self.chat_id = self.channel
        self.thread_ts = str(stub.hints.get("thread_ts") or stub.thread_id or stub.reply_to or "")
        self.recipient_team = stub.bot_id
        self.recipient_user = str(stub.hints.get("author_id") or "")
        self.limits: EgressLimits | None = sender.limits
        self.interval_s: float | None = interval_s if self.thread_ts else None
        self.typing_every_s: float | None = (
            60.0 if status and self.thread_ts else None
        )  # a status stays until the reply
        state = json.loads(resume) if resume else {}
        self.ts: str | None = state.get("ts")
        self.resumed = self.ts is not None
        self._appended = ""

    def handle(self) -> str:
        return json.dumps({"ts": self.ts}) if self.ts else ""

    async def typing(self) -> None:
        if SlackLive.status_unavailable:
            return
        try:
            await self._sender.call(
                lambda: self._client.assistant_threads_setStatus(
                    channel_id=self.channel, thread_ts=self.thread_ts, status=STATUS_TEXT
                )
            )
        except SendError as exc:
            if any(reason in str(exc) for reason in _NO_STATUS):
                SlackLive.status_unavailable = True
            raise

    async def show(self, text: str) -> None:
        if self.resumed:
            return  # what the dead worker appended is unknown: ``finish`` replaces the whole text
        visible = first_part(text, "slack")
        if not visible.startswith(self._appended) or visible == self._appended:
            return
        if self.ts is None:
            extra: dict[str, Any] = {}
            if not self.channel.startswith("D"):  # outside a DM Slack needs the reader of the stream
                extra = {"recipient_team_id": self.recipient_team, "recipient_user_id": self.recipient_user}
            response = await self._sender.call(
                lambda: self._client.chat_startStream(
                    channel=self.channel, thread_ts=self.thread_ts, markdown_text=visible, **extra
                )
            )
            self.ts = str(response["ts"])
        else:
            tail = visible[len(self._appended) :]
            ts = self.ts
            await self._sender.call(
                lambda: self._client.chat_appendStream(channel=self.channel, ts=ts, markdown_text=tail)
            )
        self._appended = visible

    async def finish(self, reply: Reply) -> list[str]:
        if self.ts is None:
            return await self._sender.send(reply)  # nothing streamed: the ordinary send
        ts = self.ts
        limit, measure = PLATFORM_LIMITS["slack"]
        parts = split_message(reply.text, limit, measure=measure) or ["…"]
        first = parts[0]
        assert self.limits is not None
        if not self.resumed and first.startswith(self._appended):
            rest_of_first = first[len(self._appended) :]
            await self.limits.call(
                "slack",
                self.channel,
                lambda: self._sender.call(
                    lambda: self._client.chat_stopStream(
                        channel=self.channel, ts=ts, markdown_text=rest_of_first or None
                    )
                ),
            )
        else:
            try:  # it may have stopped already, or timed out on Slack's side
                await self._sender.call(lambda: self._client.chat_stopStream(channel=self.channel, ts=ts))
            except SendError:
                pass
            await self.limits.call(
                "slack",
                self.channel,
                lambda: self._sender.call(
                    lambda: self._client.chat_update(channel=self.channel, ts=ts, markdown_text=first)
                ),
            )
        sent = [ts]
        rest = reply.model_copy(update={"text": "\n\n".join(parts[1:])})
        if rest.text or rest.attachments:  # a longer answer continues in the thread, then the voice note
            sent += await self._sender.send(rest)
        return sent
