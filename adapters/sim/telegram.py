"""A local Telegram Bot API: enough of it for python-telegram-bot to poll, receive webhooks and send.

Requests are ``POST /bot<token>/<method>`` with form or multipart bodies whose non-string values
are JSON-encoded (docs/decisions.md, "Platform limits"); answers are ``{"ok": true, "result": ...}`` or the real error shape
``{"ok": false, "error_code": n, "description": ..., "parameters": {"retry_after": s}}``.
Point the library at it with ``base_url=f"{sim.base_url}/bot"`` and ``base_file_url=f"{sim.base_url}/file/bot"``.

A ``sendMessage`` with ``entities`` is checked as Telegram checks them (``adapters.sim.telegram_entities``:
UTF-16 bounds, types, nesting) and refused with ``400 Bad Request: can't parse entities: ...`` otherwise;
``sim.refuse_entities = n`` refuses the next ``n`` valid ones too (to test a sender's plain-text fallback).

``POST /_sim/user_message`` body: ``{"chat_id": 42, "user_id": 7, "text": "hi", "chat_type": "private"|"group",
"thread_id": null, "reply_to": null, "mention": false, "voice": false, "photo": false}`` (``photo``: a sample 1600x1200 JPEG, served from the simulator's file host).

Streaming: ``sendChatAction`` and ``sendMessageDraft`` (private chats only, as Telegram has it: a draft
is ephemeral and never a message) are recorded in ``activity`` with their times, not in ``sent``.

``POST /_sim/redeliver`` body: ``{"chat_id": 42, "message_id": 1001}`` (or ``{"update_id": 7}``): the update that
carried that message is delivered again, unchanged (same ``update_id``), as Telegram does when it never saw the
bot confirm it: webhook mode POSTs it again; polling serves it again in the next ``getUpdates``, whatever the
bot's offset, until a later ``getUpdates`` confirms it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import aiohttp
from aiohttp import web

from adapters.sim.common import SentRecord, SimServer
from adapters.sim.files import SimFile, image_size, sample_photo, thumbnail
from adapters.sim.ogg import is_ogg, tiny_opus_ogg
from adapters.sim.telegram_entities import entity_error

__all__ = ["DEFAULT_TELEGRAM_TOKEN", "TelegramSimulator"]

log = logging.getLogger(__name__)

DEFAULT_TELEGRAM_TOKEN = "123456:SIM-telegram-token"
_SEND_METHODS = {"sendMessage", "sendVoice", "sendAudio", "sendDocument", "sendPhoto"}
_CHAT_ACTIONS = {"typing", "upload_photo", "record_voice", "upload_voice", "upload_document", "choose_sticker"}
_FILE_FIELDS = {"sendVoice": "voice", "sendAudio": "audio", "sendDocument": "document", "sendPhoto": "photo"}


class TelegramSimulator(SimServer):
    name = "telegram"

    def __init__(
        self,
        *,
        token: str = DEFAULT_TELEGRAM_TOKEN,
        username: str = "patchbay_bot",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.username = username
        self.updates: list[dict[str, Any]] = []
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self.webhook_deliveries: list[int] = []  # HTTP status of each webhook POST
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.pushed: dict[int, dict[str, Any]] = {}  # every update ever pushed, by update_id (for redelivery)
        self._update_of_message: dict[tuple[int, int], int] = {}
        self._again: list[tuple[dict[str, Any], bool]] = []  # polling redeliveries: (update, served yet)
        self.redeliveries: list[int] = []  # update_id of each redelivery, in order
        self.files: dict[str, bytes] = {}
        self.file_paths: dict[str, str] = {}  # file_id -> the file_path getFile answers (photos/…, documents/…)
        self.file_types: dict[str, str] = {}
        self.refuse_entities = 0  # > 0: refuse that many valid entity lists, as Telegram sometimes does
        self._update_ids = iter(range(1, 10**9))
        self._new_update = asyncio.Condition()
        self._delivery_tasks: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None
        self._closing = False
        self.app.router.add_route("*", "/bot{token}/{method}", self._api)
        self.app.router.add_get("/file/bot{token}/{path:.*}", self._file)
        self.app.router.add_post("/_sim/redeliver", self._post_redeliver)

    @property
    def base_url(self) -> str:
        """The Bot API root, as in ``TELEGRAM_API_BASE_URL``."""
        return self.origin

    def is_send(self, method: str) -> bool:
        return method in _SEND_METHODS

    async def before_start(self) -> None:
        self._closing = False

    async def before_stop(self) -> None:
        self._closing = True
        async with self._new_update:
            self._new_update.notify_all()  # release held long polls so shutdown does not wait them out
        for task in list(self._delivery_tasks):
            task.cancel()
        if self._http is not None:
            await self._http.close()
            self._http = None

    # ------------------------------------------------------------------ users

    async def user_message(
        self,
        chat_id: int,
        text: str = "",
        *,
        user_id: int = 1001,
        user_name: str = "alice",
        chat_type: str = "private",
        thread_id: int | None = None,
        reply_to: int | None = None,
        mention: bool = False,
        voice: bytes | None = None,
        photo: bytes | None = None,
        document: SimFile | None = None,
    ) -> dict[str, Any]:
        """A user writes into a chat; returns the Telegram ``Message`` it became.

        With a ``photo`` or ``document`` the text is the caption, as on Telegram; a photo arrives in
        two sizes (a 90-pixel thumbnail and the photo itself, largest last), each with its own file id.
        """
        message_id = self.next_id()
        if mention:
            text = f"@{self.username} {text}"
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = user_name
        else:
            chat["title"] = f"group {chat_id}"
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat,
            "from": {"id": user_id, "is_bot": False, "first_name": user_name, "username": user_name},
        }
        captioned = photo is not None or document is not None
        if text:
            message["caption" if captioned else "text"] = text
        if mention:
            entities = [{"type": "mention", "offset": 0, "length": len(self.username) + 1}]
            message["caption_entities" if captioned else "entities"] = entities
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        if reply_to is not None and (chat_id, reply_to) in self.messages:
            message["reply_to_message"] = self.messages[(chat_id, reply_to)]
        if voice is not None:
            file_id = f"voice-{message_id}"
            self.files[file_id] = voice
            message["voice"] = {"file_id": file_id, "file_unique_id": file_id, "duration": 1, "mime_type": "audio/ogg"}
            message["voice"]["file_size"] = len(voice)
        if photo is not None:
            sizes = [data for data in (thumbnail(photo, 90), photo) if data is not None]
            message["photo"] = [self._photo_size(f"photo-{message_id}-{n}", data) for n, data in enumerate(sizes)]
        if document is not None:
            file_id = f"doc-{message_id}"
            self._keep_file(file_id, document.data, document.mime_type, f"documents/{file_id}-{document.filename}")
            message["document"] = {
                "file_id": file_id,
                "file_unique_id": file_id,
                "file_name": document.filename,
                "mime_type": document.mime_type,
                "file_size": len(document.data),
            }
        self.messages[(chat_id, message_id)] = message
        await self.push_update({"message": message})
        return message

    async def user_message_from_json(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.user_message(
            int(body["chat_id"]),
            str(body.get("text", "")),
            user_id=int(body.get("user_id", 1001)),
            user_name=str(body.get("user_name", "alice")),
            chat_type=str(body.get("chat_type", "private")),
            thread_id=body.get("thread_id"),
            reply_to=body.get("reply_to"),
            mention=bool(body.get("mention", False)),
            voice=tiny_opus_ogg() if body.get("voice") else None,
            photo=sample_photo() if body.get("photo") else None,
        )

    def _keep_file(self, file_id: str, data: bytes, mime_type: str, path: str) -> None:
        self.files[file_id] = data
        self.file_types[file_id] = mime_type
        self.file_paths[file_id] = path

    def _photo_size(self, file_id: str, data: bytes) -> dict[str, Any]:
        self._keep_file(file_id, data, "image/jpeg", f"photos/{file_id}.jpg")
        width, height = image_size(data) or (0, 0)
        return {"file_id": file_id, "file_unique_id": file_id, "width": width, "height": height, "file_size": len(data)}

    async def push_update(self, update: dict[str, Any]) -> None:
        update = {"update_id": next(self._update_ids), **update}
        self.pushed[update["update_id"]] = update
        if "message" in update:
            message = update["message"]
            self._update_of_message[(int(message["chat"]["id"]), int(message["message_id"]))] = update["update_id"]
        await self._offer(update)

    async def redeliver(
        self, *, chat_id: int | None = None, message_id: int | None = None, update_id: int | None = None
    ) -> dict[str, Any]:
        """Deliver an update again, unchanged: by its ``update_id``, or by the message it carried."""
        if update_id is None:
            if chat_id is None or message_id is None:
                raise ValueError("redeliver needs update_id, or chat_id and message_id")
            update_id = self._update_of_message.get((chat_id, message_id))
        if update_id is None or update_id not in self.pushed:
            raise KeyError(f"no update to redeliver (chat_id={chat_id} message_id={message_id} update_id={update_id})")
        update = self.pushed[update_id]
        self.redeliveries.append(update_id)
        if self.webhook_url:
            await self._offer(update)
            return update
        # Polling: served ahead of the offset the bot asks for, like an update whose confirmation Telegram lost.
        self._again.append((update, False))
        async with self._new_update:
            self._new_update.notify_all()
        return update

    async def _offer(self, update: dict[str, Any]) -> None:
        if self.webhook_url:
            task = asyncio.create_task(self._deliver(update))
            self._delivery_tasks.add(task)
            task.add_done_callback(self._delivery_tasks.discard)
            return
        self.updates.append(update)
        async with self._new_update:
            self._new_update.notify_all()

    async def _deliver(self, update: dict[str, Any]) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        headers = {"Content-Type": "application/json"}
        if self.webhook_secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook_secret
        assert self.webhook_url is not None
        try:
            async with self._http.post(self.webhook_url, data=json.dumps(update), headers=headers) as response:
                self.webhook_deliveries.append(response.status)
        except aiohttp.ClientError as exc:
            log.warning("webhook delivery to %s failed: %s", self.webhook_url, exc)
            self.webhook_deliveries.append(0)

    async def _post_redeliver(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            update = await self.redeliver(
                chat_id=None if body.get("chat_id") is None else int(body["chat_id"]),
                message_id=None if body.get("message_id") is None else int(body["message_id"]),
                update_id=None if body.get("update_id") is None else int(body["update_id"]),
            )
        except (KeyError, ValueError, TypeError) as exc:
            return web.json_response({"ok": False, "error": f"bad redelivery: {exc}"}, status=400)
        return web.json_response({"ok": True, "result": update})

    # ------------------------------------------------------------------ the Bot API

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.requests.append((request.method, method))
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        params, files = await _params(request)
        failure = self.take_failure(method)
        if failure is not None:
            if failure.status == 429:
                retry = max(1, round(failure.retry_after or 1))
                return _error(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
            return _error(failure.status, "Internal Server Error" if failure.status >= 500 else "Bad Request")
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _error(404, "Not Found")
        try:
            result = await handler(params, files)
        except _ApiError as exc:
            return _error(exc.status, exc.description)
        return web.json_response({"ok": True, "result": result})

    def _me(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Patchbay", "username": self.username}

    async def _m_getMe(self, params: dict[str, Any], files: dict[str, _Upload]) -> Any:
        return {**self._me(), "can_join_groups": True, "can_read_all_group_messages": False}

    async def _m_deleteWebhook(self, params: dict[str, Any], files: dict[str, _Upload]) -> Any:
        self.webhook_url = None
        self.webhook_secret = None
        return True

    async def _m_setWebhook(self, params: dict[str, Any], files: dict[str, _Upload]) -> Any:
        self.webhook_url = str(params["url"]) or None
        self.webhook_secret = params.get("secret_token")
        return True

    async def _m_getWebhookInfo(self, params: dict[str, Any], files: dict[str, _Upload]) -> Any:
        return {"url": self.webhook_url or "", "has_custom_certificate": False, "pending_update_count": 0}

    async def _m_getUpdates(self, params: dict[str, Any], files: dict[str, _Upload]) -> Any:
        if self.webhook_url:
            raise _ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        # Asking for an offset confirms every earlier update: Telegram forgets them.
        self.updates = [u for u in self.updates if u["update_id"] >= offset]
        self._again = [(u, served) for u, served in self._again if not (served and u["update_id"] < offset)]
        if not self.updates and not self._again and timeout > 0:
            async with self._new_update:
                try:
                    await asyncio.wait_for(
                        self._new_update.wait_for(lambda: bool(self.updates or self._again) or self._closing), timeout
                    )
                except TimeoutError:
                    pass
        again = [u for u, _ in self._again]
        self._again = [(u, True) for u, _ in self._again]
        # Redeliveries first, so the offset the bot takes from the last update of the batch still moves forward.
        return (again + self.updates)[:limit]

    async def _m_getFile(self, params: dict[str, Any], files: dict[str, _Upload]) -> Any:
        file_id = str(params["file_id"])
        if file_id not in self.files:
            raise _ApiError(400, "Bad Request: invalid file_id")
        return {
            "file_id": file_id,
            "file_unique_id": file_id,
            "file_size": len(self.files[file_id]),
            "file_path": self.file_paths.get(file_id, f"voice/{file_id}.oga"),
        }

    async def _m_sendChatAction(self, params: dict[str, Any], files: dict[str, _Upload]) -> Any:
        action = str(params.get("action", ""))
        if action not in _CHAT_ACTIONS:
            raise _ApiError(400, "Bad Request: wrong parameter action in request")
        thread = params.get("message_thread_id")
        chat = str(params["chat_id"])
        self.record_activity(SentRecord("sendChatAction", chat, action, str(thread) if thread else None))
        return True

    async def _m_sendMessageDraft(self, params: dict[str, Any], files: dict[str, _Upload]) -> Any:
        chat_id = int(params["chat_id"])
        draft_id = int(params.get("draft_id") or 0)
        if chat_id < 0:
            raise _ApiError(400, "Bad Request: message drafts can be sent to private chats only")
        if draft_id == 0:
            raise _ApiError(400, "Bad Request: draft_id must be non-zero")
        text = str(params.get("text", ""))
        if len(text.encode("utf-16-le")) // 2 > 4096:
            raise _ApiError(400, "Bad Request: message is too long")
        thread = params.get("message_thread_id")
        record = SentRecord("sendMessageDraft", str(chat_id), text, str(thread) if thread else None)
        record.message_id = str(draft_id)
        self.record_activity(record)
        return True

    async def _m_sendMessage(self, params: dict[str, Any], files: dict[str, _Upload]) -> Any:
        text = str(params.get("text", ""))
        if not text:
            raise _ApiError(400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le")) // 2 > 4096:
            raise _ApiError(400, "Bad Request: message is too long")
        content: dict[str, Any] = {"text": text}
        entities = params.get("entities")
        if entities is not None:
            problem = entity_error(text, entities)
            if problem is None and self.refuse_entities > 0:
                self.refuse_entities -= 1
                problem = "can't parse entities: Unsupported start tag at byte offset 0"
            if problem is not None:
                raise _ApiError(400, f"Bad Request: {problem}")
            content["entities"] = entities
        return await self._store_sent("sendMessage", params, content)

    async def _m_sendVoice(self, params: dict[str, Any], files: dict[str, _Upload]) -> Any:
        return await self._send_file("sendVoice", params, files)

    async def _m_sendAudio(self, params: dict[str, Any], files: dict[str, _Upload]) -> Any:
        return await self._send_file("sendAudio", params, files)

    async def _m_sendDocument(self, params: dict[str, Any], files: dict[str, _Upload]) -> Any:
        return await self._send_file("sendDocument", params, files)

    async def _m_sendPhoto(self, params: dict[str, Any], files: dict[str, _Upload]) -> Any:
        return await self._send_file("sendPhoto", params, files)

    async def _send_file(self, method: str, params: dict[str, Any], files: dict[str, _Upload]) -> Any:
        field = _FILE_FIELDS[method]
        upload = files.get(field)
        if upload is None:
            raise _ApiError(400, f"Bad Request: there is no {field} in the request")
        if method == "sendVoice" and not is_ogg(upload.data):
            raise _ApiError(400, "Bad Request: wrong file type: voice must be OGG/Opus")
        file_id = f"sent-{self.next_id()}"
        self.files[file_id] = upload.data
        info = {
            "file_id": file_id,
            "name": upload.filename,
            "content_type": upload.content_type,
            "size": len(upload.data),
            "ogg_valid": is_ogg(upload.data),
        }
        extra: dict[str, Any] = {field: {"file_id": file_id, "file_unique_id": file_id, "file_size": len(upload.data)}}
        if method == "sendVoice":
            extra[field]["duration"] = int(params.get("duration") or 1)
        if params.get("caption"):
            extra["caption"] = str(params["caption"])
        return await self._store_sent(method, params, extra, files=[info])

    async def _store_sent(
        self, method: str, params: dict[str, Any], content: dict[str, Any], files: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        reply_to = _reply_target(params)
        thread_id = params.get("message_thread_id")
        message_id = self.next_id()
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
            "from": self._me(),
            **content,
        }
        if thread_id is not None:
            message["message_thread_id"] = int(thread_id)
        if reply_to is not None and (chat_id, reply_to) in self.messages:
            message["reply_to_message"] = self.messages[(chat_id, reply_to)]
        self.messages[(chat_id, message_id)] = message
        await self.record(
            SentRecord(
                method=method,
                chat_id=str(chat_id),
                text=str(content.get("text") or content.get("caption") or ""),
                thread_id=None if thread_id is None else str(thread_id),
                reply_to=None if reply_to is None else str(reply_to),
                files=files or [],
                message_id=str(message_id),
                raw={k: v for k, v in params.items() if isinstance(v, str | int | float | bool | dict | list)},
            )
        )
        return message

    def file_bytes(self, file_id: str) -> bytes:
        return self.files[file_id]

    async def _file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        file_id = next((fid for fid, known in self.file_paths.items() if known == path), None)
        if file_id is None:
            file_id = path.rsplit("/", 1)[-1].split(".", 1)[0]
        data = self.files.get(file_id)
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type=self.file_types.get(file_id, "audio/ogg"))


class _ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


class _Upload:
    __slots__ = ("content_type", "data", "filename")

    def __init__(self, filename: str, content_type: str, data: bytes) -> None:
        self.filename = filename
        self.content_type = content_type
        self.data = data


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


async def _params(request: web.Request) -> tuple[dict[str, Any], dict[str, _Upload]]:
    """Form, multipart, JSON or query parameters; non-string values arrive JSON-encoded."""
    params: dict[str, Any] = dict(request.query)
    files: dict[str, _Upload] = {}
    if request.content_type == "application/json":
        params.update(await request.json())
        return params, files
    if request.method == "POST" and request.can_read_body:
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files[key] = _Upload(value.filename, value.content_type, value.file.read())
            else:
                params[key] = _decode(str(value))
    return params, files


def _decode(value: str) -> Any:
    if value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _reply_target(params: dict[str, Any]) -> int | None:
    reply = params.get("reply_parameters")
    if isinstance(reply, dict) and "message_id" in reply:
        return int(reply["message_id"])
    if params.get("reply_to_message_id"):
        return int(params["reply_to_message_id"])
    return None
