"""A local Slack: the Web API methods the bot calls, and signed Events API delivery with Slack's retries.

Web API: ``POST /api/<method>`` (point ``AsyncWebClient(base_url=f"{sim.base_url}")`` at it; the base URL
ends in ``/api/``): ``auth.test`` (form), ``chat.postMessage`` (JSON), the external file upload
(``files.getUploadURLExternal``, the upload URL, ``files.completeUploadExternal``). A 429 carries an
integer ``Retry-After`` header and ``{"ok": false, "error": "ratelimited"}``. ``chat.postMessage`` checks
``text`` and ``blocks`` as Slack does (``adapters.sim.slack_blocks``: block types, the 12,000 characters of
``markdown`` blocks, ``msg_too_long``) and refuses with ``invalid_blocks`` and its ``errors`` list otherwise;
the record's ``text`` is what a user reads (the ``markdown`` blocks when there are any).

Streaming: ``chat.startStream`` (in a thread; ``recipient_user_id`` and ``recipient_team_id`` are needed
outside DMs), ``chat.appendStream``, ``chat.stopStream``, ``chat.update`` and ``assistant.threads.setStatus``
(refused with ``missing_scope`` when ``assistant_status`` is off) are recorded in ``activity`` with their
times; a streamed message is one entry in ``sent`` whose text grows, ``raw["streaming"]`` until stopped.

Events: with ``events_url`` and ``signing_secret`` set, each user message is POSTed as an
``event_callback`` signed like Slack (``v0=HMAC_SHA256(secret, "v0:{ts}:{body}")``); without a 2xx
within 3 s it is resent with ``X-Slack-Retry-Num``/``X-Slack-Retry-Reason``, at most 3 times, each retry
``retry_delays_s[n]`` seconds after the failed attempt (none by default; Slack's own schedule is about
immediately, after 1 minute and after 5 minutes, which a test may compress).

``POST /_sim/user_message`` body: ``{"channel": "C1", "user": "U1", "text": "hi", "channel_type": "channel"|"im",
"thread_ts": null, "mention": false, "voice": false, "photo": false, "deliveries": null}`` (``photo``: a sample 1600x1200 JPEG behind ``url_private``).

``POST /_sim/user_reaction`` body: ``{"channel": "C1", "ts": "...", "user": "U1", "reaction": "+1", "item_user": null}``
(``item_user`` defaults to the author the simulator saw post ``ts``): a ``reaction_added`` event, delivered like
a message (signed to ``events_url``, or over Socket Mode when a socket is open).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import aiohttp
from aiohttp import web

from adapters.sim.common import SentRecord, SimServer
from adapters.sim.files import SimFile, sample_photo
from adapters.sim.ogg import is_ogg, tiny_opus_ogg
from adapters.sim.slack_blocks import blocks_error, shown_text

__all__ = ["DEFAULT_SLACK_TOKEN", "SlackSimulator", "sign_slack_request"]

log = logging.getLogger(__name__)

DEFAULT_SLACK_TOKEN = "xoxb-sim-slack-token"
DEFAULT_SIGNING_SECRET = "sim-signing-secret"
DEFAULT_APP_TOKEN = "xapp-sim-app-token"
_SEND_METHODS = {
    "chat.postMessage",
    "chat.startStream",
    "chat.appendStream",
    "chat.stopStream",
    "chat.update",
    "files.getUploadURLExternal",
    "files.completeUploadExternal",
}
RETRY_TIMEOUT_S = 3.0
MAX_RETRIES = 3


def sign_slack_request(signing_secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


class SlackSimulator(SimServer):
    name = "slack"

    def __init__(
        self,
        *,
        token: str = DEFAULT_SLACK_TOKEN,
        signing_secret: str = DEFAULT_SIGNING_SECRET,
        events_url: str | None = None,
        app_token: str = DEFAULT_APP_TOKEN,
        team_id: str = "T0SIM",
        bot_user_id: str = "U0BOT",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.token = token
        self.signing_secret = signing_secret
        self.events_url = events_url
        self.app_token = app_token
        self.sockets: list[web.WebSocketResponse] = []  # Socket Mode connections
        self.socket_acks: list[str] = []  # envelope ids the bot acknowledged over the socket
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = "B0BOT"
        # Every Events API POST: event_id, event_ts (the message's ts), retry_num, status, at (answered at).
        self.deliveries: list[dict[str, Any]] = []
        self.retry_delays_s: tuple[float, ...] = ()  # wait before retry n (missing: at once)
        self._uploads: dict[str, dict[str, Any]] = {}
        self._ts = 0
        self.message_authors: dict[str, str] = {}  # ts -> user id, the default ``item_user`` of a reaction
        self.assistant_status = True  # the app has the assistant feature (assistant.threads.setStatus)
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.app.router.add_post("/api/{method}", self._api)
        self.app.router.add_post("/_upload/{file_id}", self._upload)
        self.app.router.add_get("/_files/{file_id}", self._download)
        self.app.router.add_get("/_socket", self._socket)
        self.app.router.add_post("/_sim/user_reaction", self._post_user_reaction)

    @property
    def base_url(self) -> str:
        """The Web API root, as in ``SLACK_API_BASE_URL``."""
        return f"{self.origin}/api/"

    def is_send(self, method: str) -> bool:
        return method in _SEND_METHODS

    async def before_stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for socket in list(self.sockets):
            await socket.close()
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _next_ts(self) -> str:
        self._ts += 1
        return f"{int(time.time())}.{self._ts:06d}"

    # ------------------------------------------------------------------ users and events

    async def user_message(
        self,
        channel: str,
        text: str,
        *,
        user: str = "U0ALICE",
        channel_type: str = "channel",
        thread_ts: str | None = None,
        mention: bool = False,
        voice: bytes | None = None,
        files: list[SimFile] | None = None,
        deliveries: int | None = None,
        wait: bool = True,
    ) -> dict[str, Any]:
        """A user posts; the event is delivered to ``events_url``. ``deliveries`` forces that many POSTs of it."""
        ts = self._next_ts()
        self.message_authors[ts] = user
        if mention:
            text = f"<@{self.bot_user_id}> {text}"
        kind = "app_mention" if mention and channel_type != "im" else "message"
        event: dict[str, Any] = {
            "type": kind,
            "user": user,
            "text": text,
            "ts": ts,
            "channel": channel,
            "event_ts": ts,
            "team": self.team_id,
            "client_msg_id": f"cm-{ts}",
        }
        if kind == "message":
            event["channel_type"] = channel_type
        if thread_ts:
            event["thread_ts"] = thread_ts
        if voice is not None:
            file_id = f"F{self.next_id()}"
            self._uploads[file_id] = {"data": voice, "filename": "audio_message.ogg"}
            event["subtype"] = "file_share"
            event["files"] = [
                {
                    "id": file_id,
                    "name": "audio_message.ogg",
                    "mimetype": "audio/ogg",
                    "subtype": "slack_audio",
                    "size": len(voice),
                    "url_private": f"{self.origin}/_files/{file_id}",
                }
            ]
        for item in files or []:
            file_id = f"F{self.next_id()}"
            self._uploads[file_id] = {"data": item.data, "filename": item.filename, "mimetype": item.mime_type}
            event["subtype"] = "file_share"
            shared = {
                "id": file_id,
                "name": item.filename,
                "mimetype": item.mime_type,
                "filetype": item.filename.rsplit(".", 1)[-1],
                "size": len(item.data),
                "url_private": item.url or f"{self.origin}/_files/{file_id}",
                "url_private_download": item.url or f"{self.origin}/_files/{file_id}?download=1",
            }
            event["files"] = [*event.get("files", []), shared]
        delivery = self._deliver(self._event_callback(event), deliveries)
        if wait:
            await delivery
        else:
            task = asyncio.ensure_future(delivery)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return event

    async def user_message_from_json(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.user_message(
            str(body["channel"]),
            str(body.get("text", "")),
            user=str(body.get("user", "U0ALICE")),
            channel_type=str(body.get("channel_type", "channel")),
            thread_ts=body.get("thread_ts"),
            mention=bool(body.get("mention", False)),
            voice=tiny_opus_ogg() if body.get("voice") else None,
            files=[SimFile(sample_photo())] if body.get("photo") else None,
            deliveries=body.get("deliveries"),
            wait=False,
        )

    async def user_reaction(
        self,
        channel: str,
        ts: str,
        user: str,
        reaction: str,
        item_user: str | None = None,
        *,
        deliveries: int | None = None,
    ) -> dict[str, Any]:
        """A user adds ``reaction`` (a Slack name: ``+1``, ``thumbsdown::skin-tone-3``) to the message ``ts``.

        ``item_user`` is the reacted message's author; by default the one the simulator saw post it.
        Delivered like a message event, and awaited. Returns the event.
        """
        event_ts = self._next_ts()
        event: dict[str, Any] = {
            "type": "reaction_added",
            "user": user,
            "reaction": reaction,
            "item": {"type": "message", "channel": channel, "ts": ts},
            "event_ts": event_ts,
        }
        author = item_user if item_user is not None else self.message_authors.get(ts)
        if author is not None:
            event["item_user"] = author
        await self._deliver(self._event_callback(event), deliveries)
        return event

    async def _post_user_reaction(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            event = await self.user_reaction(
                str(body["channel"]),
                str(body["ts"]),
                str(body.get("user", "U0ALICE")),
                str(body.get("reaction", "+1")),
                body.get("item_user"),
                deliveries=body.get("deliveries"),
            )
        except (KeyError, ValueError) as exc:
            return web.json_response({"ok": False, "error": f"bad user reaction: {exc}"}, status=400)
        return web.json_response({"ok": True, "result": event})

    def _event_callback(self, event: dict[str, Any]) -> dict[str, Any]:
        return {
            "token": "sim-verification-token",
            "team_id": self.team_id,
            "api_app_id": "A0SIM",
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{self.next_id()}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": self.team_id, "user_id": self.bot_user_id, "is_bot": True}],
        }

    async def _deliver(self, body: dict[str, Any], forced: int | None) -> None:
        if self.sockets:
            await self._deliver_over_socket(body)
            return
        if not self.events_url:
            log.warning("slack simulator: no events_url configured; event %s not delivered", body["event_id"])
            return
        if self._http is None:
            self._http = aiohttp.ClientSession()
        raw = json.dumps(body).encode()
        attempts = forced if forced is not None else 1 + MAX_RETRIES
        reason = "http_timeout"
        for retry_num in range(attempts):
            if retry_num and forced is None and retry_num <= len(self.retry_delays_s):
                await asyncio.sleep(self.retry_delays_s[retry_num - 1])
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "X-Slack-Request-Timestamp": timestamp,
                "X-Slack-Signature": sign_slack_request(self.signing_secret, timestamp, raw),
            }
            if retry_num:
                headers["X-Slack-Retry-Num"] = str(retry_num)
                headers["X-Slack-Retry-Reason"] = reason
            status = await self._post(raw, headers)
            self.deliveries.append(
                {
                    "event_id": body["event_id"],
                    "event_ts": body["event"].get("ts"),
                    "retry_num": retry_num,
                    "status": status,
                    "at": time.time(),  # when the answer came back
                }
            )
            if forced is None and 200 <= status < 300:
                return
            reason = "http_timeout" if status == 0 else "http_error"

    async def _post(self, raw: bytes, headers: dict[str, str]) -> int:
        assert self._http is not None and self.events_url is not None
        try:
            timeout = aiohttp.ClientTimeout(total=RETRY_TIMEOUT_S)
            async with self._http.post(self.events_url, data=raw, headers=headers, timeout=timeout) as response:
                return response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.info("slack simulator: delivery failed (%s); Slack would retry", exc)
            return 0

    # ------------------------------------------------------------------ Socket Mode

    async def _deliver_over_socket(self, body: dict[str, Any]) -> None:
        envelope = {
            "envelope_id": f"env-{self.next_id()}",
            "type": "events_api",
            "payload": body,
            "accepts_response_payload": False,
            "retry_attempt": 0,
            "retry_reason": "",
        }
        self.deliveries.append({"event_id": body["event_id"], "retry_num": 0, "status": "socket"})
        await self.sockets[-1].send_str(json.dumps(envelope))

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0SIM"}}))
        self.sockets.append(ws)
        try:
            async for frame in ws:
                if frame.type == aiohttp.WSMsgType.TEXT:
                    ack = json.loads(frame.data)
                    if "envelope_id" in ack:
                        self.socket_acks.append(str(ack["envelope_id"]))
        finally:
            self.sockets.remove(ws)
        return ws

    # ------------------------------------------------------------------ the Web API

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.requests.append(("POST", method))
        params = await _params(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip() or params.get("token", "")
        if method == "apps.connections.open":
            if token != self.app_token:
                return web.json_response({"ok": False, "error": "invalid_auth"})
            return web.json_response({"ok": True, "url": f"ws://{self.host}:{self.port}/_socket"})
        if token != self.token:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        failure = self.take_failure(method)
        if failure is not None:
            if failure.status == 429:
                retry = str(max(1, round(failure.retry_after or 1)))
                return web.json_response(
                    {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": retry}
                )
            return web.json_response({"ok": False, "error": "fatal_error"}, status=failure.status)
        handler = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.startStream": self._start_stream,
            "chat.appendStream": self._append_stream,
            "chat.stopStream": self._stop_stream,
            "chat.update": self._update,
            "assistant.threads.setStatus": self._set_status,
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload,
        }.get(method)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"}, status=404)
        try:
            result = await handler(params)
        except _SlackError as exc:
            return web.json_response({"ok": False, "error": exc.error})
        except (KeyError, ValueError) as exc:
            return web.json_response({"ok": False, "error": "invalid_arguments", "detail": str(exc)})
        return web.json_response({"ok": True, **result})

    async def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"{self.origin}/",
            "team": "Simulated",
            "user": "patchbay",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    async def _post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params["channel"])
        text = str(params.get("text") or "")
        if not text and not params.get("blocks"):
            return {"ok": False, "error": "no_text"}
        refusal = blocks_error(text, params.get("blocks"))
        if refusal is not None:
            return refusal
        ts = self._next_ts()
        self.message_authors[ts] = self.bot_user_id
        thread_ts = params.get("thread_ts")
        await self.record(
            SentRecord(
                method="chat.postMessage",
                chat_id=channel,
                text=shown_text(text, params.get("blocks")),  # the blocks when there are any: what users read
                thread_id=thread_ts,
                reply_to=thread_ts,
                message_id=ts,
                raw=params,
            )
        )
        message = {"type": "message", "text": text, "user": self.bot_user_id, "bot_id": self.bot_id, "ts": ts}
        return {"channel": channel, "ts": ts, "message": message}

    def _streamed(self, params: dict[str, Any]) -> SentRecord:
        message = self.find_sent(str(params["channel"]), str(params["ts"]))
        if message is None:
            raise _SlackError("message_not_found")
        return message

    async def _start_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params["channel"])
        thread_ts = params.get("thread_ts")
        if not thread_ts:
            raise _SlackError("invalid_arguments")
        if not channel.startswith("D") and not (params.get("recipient_user_id") and params.get("recipient_team_id")):
            raise _SlackError("missing_recipient_user_id")
        text = str(params.get("markdown_text") or "")
        ts = self._next_ts()
        self.message_authors[ts] = self.bot_user_id
        record = SentRecord("chat.startStream", channel, text, str(thread_ts), str(thread_ts), message_id=ts)
        record.raw = {**params, "streaming": True}
        await self.record(record)
        self.record_activity(SentRecord("chat.startStream", channel, text, str(thread_ts), message_id=ts))
        return {"channel": channel, "ts": ts}

    async def _append_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._streamed(params)
        if not message.raw.get("streaming"):
            raise _SlackError("message_not_in_streaming_state")
        text = str(params.get("markdown_text") or "")
        if not text:
            raise _SlackError("no_text")
        message.text += text
        self.record_activity(SentRecord("chat.appendStream", message.chat_id, text, message_id=message.message_id))
        return {"channel": message.chat_id, "ts": message.message_id}

    async def _stop_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._streamed(params)
        if not message.raw.get("streaming"):
            raise _SlackError("message_not_in_streaming_state")
        text = str(params.get("markdown_text") or "")
        message.text += text
        message.raw["streaming"] = False
        self.record_activity(SentRecord("chat.stopStream", message.chat_id, text, message_id=message.message_id))
        return {"channel": message.chat_id, "ts": message.message_id, "message": {"text": message.text}}

    async def _update(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._streamed(params)
        text = str(params.get("markdown_text") or params.get("text") or "")
        if not text and not params.get("blocks"):
            raise _SlackError("no_text")
        message.text = text
        self.record_activity(SentRecord("chat.update", message.chat_id, text, message_id=message.message_id))
        return {"channel": message.chat_id, "ts": message.message_id, "text": text}

    async def _set_status(self, params: dict[str, Any]) -> dict[str, Any]:
        if not self.assistant_status:
            raise _SlackError("missing_scope")
        channel, thread_ts = str(params["channel_id"]), str(params["thread_ts"])
        self.record_activity(
            SentRecord("assistant.threads.setStatus", channel, str(params.get("status", "")), thread_ts)
        )
        return {}

    async def _get_upload_url(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = f"F{self.next_id()}"
        self._uploads[file_id] = {"filename": params["filename"], "length": int(params["length"]), "data": None}
        return {"upload_url": f"{self.origin}/_upload/{file_id}", "file_id": file_id}

    async def _upload(self, request: web.Request) -> web.Response:
        upload = self._uploads.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404, text="unknown upload")
        upload["data"] = await request.read()
        return web.Response(text=f"OK - {len(upload['data'])}")

    async def _download(self, request: web.Request) -> web.Response:
        upload = self._uploads.get(request.match_info["file_id"])
        if upload is None or upload.get("data") is None:
            return web.Response(status=404)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.Response(status=403)  # url_private needs the bot token, as on Slack
        return web.Response(body=upload["data"], content_type=upload.get("mimetype", "application/octet-stream"))

    def file_bytes(self, file_id: str) -> bytes:
        data = self._uploads[file_id].get("data")
        if data is None:
            raise KeyError(f"{file_id} was never uploaded")
        return bytes(data)

    async def _complete_upload(self, params: dict[str, Any]) -> dict[str, Any]:
        files = params["files"]
        files = json.loads(files) if isinstance(files, str) else files
        infos: list[dict[str, Any]] = []
        for item in files:
            upload = self._uploads.get(item["id"])
            if upload is None or upload.get("data") is None:
                return {"ok": False, "error": "file_not_found"}
            data: bytes = upload["data"]
            infos.append(
                {
                    "id": item["id"],
                    "file_id": item["id"],
                    "name": upload["filename"],
                    "size": len(data),
                    "ogg_valid": is_ogg(data),
                }
            )
        channel = str(params.get("channel_id") or params.get("channels") or "")
        thread_ts = params.get("thread_ts")
        await self.record(
            SentRecord(
                method="files.completeUploadExternal",
                chat_id=channel,
                text=str(params.get("initial_comment") or ""),
                thread_id=thread_ts,
                reply_to=thread_ts,
                files=infos,
                message_id=self._next_ts(),
            )
        )
        return {"files": [{"id": info["id"], "name": info["name"], "title": info["name"]} for info in infos]}


class _SlackError(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


async def _params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        params.update(await request.json())
    elif request.can_read_body:
        params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    return params
