"""A local Discord: the REST routes a bot uses and the gateway websocket, enough for discord.py unchanged.

REST at ``{origin}/api/v10`` (set ``discord.http.Route.BASE``): ``GET /users/@me``,
``GET /oauth2/applications/@me``, ``GET /gateway``, ``POST /channels/{id}/messages`` (JSON, or multipart
with ``payload_json`` and ``files[n]``). A 429 has a ``Via`` header and the body
``{"message", "retry_after", "global"}``, which is what makes discord.py retry it (docs/decisions.md).

Gateway at ``ws://{host}:{port}/gateway`` (set ``DiscordWebSocket.DEFAULT_GATEWAY``): HELLO,
heartbeat/ACK, IDENTIFY (token checked: close 4004; intents recorded), READY, GUILD_CREATE, then
MESSAGE_CREATE for each user message; RESUME is answered with INVALID_SESSION so the client
identifies afresh. Frames are uncompressed JSON text.

Streaming: ``POST /channels/{id}/typing`` and ``PATCH /channels/{id}/messages/{id}`` (the edit updates the
message's entry in ``sent``) are recorded in ``activity`` with their times; a message created with a
``nonce`` and ``enforce_nonce`` that the channel saw before returns the earlier message, as Discord does.
Inject failures with the methods ``typing`` and ``edit_message``.

``POST /_sim/user_message`` body: ``{"channel_id": "810", "content": "hi", "author_id": "501", "author": "alice",
"dm": false, "thread_id": null, "mention": false, "reply_to": null, "voice": false, "photo": false}`` (``photo``: a sample 1600x1200 JPEG, served from the simulator's file host).

``POST /_sim/user_reaction`` body: ``{"channel_id": "810", "message_id": "...", "user_id": "502", "emoji": "👍"}``
(a custom emoji as ``"name:id"``): MESSAGE_REACTION_ADD to every session with a reactions intent.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any

from aiohttp import BodyPartReader, WSMsgType, web

from adapters.sim.common import SentRecord, SimServer
from adapters.sim.files import SimFile, image_size, sample_photo
from adapters.sim.ogg import is_ogg, tiny_opus_ogg

__all__ = [
    "DEFAULT_DISCORD_TOKEN",
    "DIRECT_MESSAGE_REACTIONS_INTENT",
    "GUILD_MESSAGE_REACTIONS_INTENT",
    "MESSAGE_CONTENT_INTENT",
    "DiscordSimulator",
]

log = logging.getLogger(__name__)

DEFAULT_DISCORD_TOKEN = "sim.discord.bot-token"
MESSAGE_CONTENT_INTENT = 1 << 15
GUILD_MESSAGE_REACTIONS_INTENT = 1 << 10
DIRECT_MESSAGE_REACTIONS_INTENT = 1 << 13
VOICE_MESSAGE_FLAG = 1 << 13
_EPOCH_MS = 1420070400000


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py decodes JSON only when Content-Type is exactly application/json (no charset).
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={**(headers or {}), "Content-Type": "application/json"}
    )


def _now() -> str:
    return datetime.now(UTC).isoformat()


class _Session:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.sequence = 0
        self.identified = False
        self.intents = 0

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        self.sequence += 1
        await self.ws.send_str(json.dumps({"op": 0, "t": event, "s": self.sequence, "d": data}))


class DiscordSimulator(SimServer):
    name = "discord"

    def __init__(
        self,
        *,
        token: str = DEFAULT_DISCORD_TOKEN,
        bot_user_id: int = 900100200300400500,
        guild_id: int = 800,
        channels: tuple[int, ...] = (810, 811),
        threads: dict[int, int] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.token = token
        self.bot_user: dict[str, Any] = {
            "id": str(bot_user_id),
            "username": "patchbay",
            "discriminator": "0",
            "avatar": None,
            "bot": True,
        }
        self.guild_id = guild_id
        self.channels = list(channels)
        self.threads = dict(threads or {820: channels[0]})  # thread id -> parent channel id
        self.sessions: list[_Session] = []
        self.identifies: list[dict[str, Any]] = []  # every IDENTIFY received, for inspection
        self.attachments: dict[str, bytes] = {}
        self.attachment_types: dict[str, str] = {}
        self.message_authors: dict[str, str] = {}  # message id -> author id, for MESSAGE_REACTION_ADD
        self.nonces: dict[tuple[str, str], str] = {}  # (channel, nonce) -> message id
        self._snowflake = 1
        self.app.router.add_get("/api/v10/users/@me", self._me)
        self.app.router.add_get("/api/v10/oauth2/applications/@me", self._application)
        self.app.router.add_get("/api/v10/gateway", self._gateway_url)
        self.app.router.add_get("/api/v10/gateway/bot", self._gateway_url)
        self.app.router.add_post("/api/v10/channels/{channel_id}/messages", self._create_message)
        self.app.router.add_patch("/api/v10/channels/{channel_id}/messages/{message_id}", self._edit_message)
        self.app.router.add_post("/api/v10/channels/{channel_id}/typing", self._typing)
        self.app.router.add_get("/attachments/{attachment_id}/{filename}", self._attachment)
        self.app.router.add_get("/gateway", self._gateway)
        self.app.router.add_post("/_sim/user_reaction", self._post_user_reaction)

    @property
    def api_base_url(self) -> str:
        return f"{self.origin}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/gateway"

    @property
    def bot_id(self) -> int:
        return int(self.bot_user["id"])

    def snowflake(self) -> str:
        self._snowflake += 1
        millis = int(datetime.now(UTC).timestamp() * 1000) - _EPOCH_MS
        return str((millis << 22) | (self._snowflake & 0x3FFFFF))

    def is_send(self, method: str) -> bool:
        return method == "create_message"

    async def before_stop(self) -> None:
        for session in list(self.sessions):
            await session.ws.close(code=1001, message=b"simulator stopping")

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {self.token}"

    # ------------------------------------------------------------------ REST

    async def _me(self, request: web.Request) -> web.Response:
        self.requests.append(("GET", "/users/@me"))
        if not self._authorised(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        return _json({**self.bot_user, "flags": 0, "verified": True, "mfa_enabled": False})

    async def _application(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        return _json(
            {
                "id": str(self.bot_id + 1),
                "name": "Patchbay",
                "icon": None,
                "description": "",
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": {"id": "501", "username": "owner", "discriminator": "0", "avatar": None},
                "summary": "",
                "verify_key": "0" * 64,
                "team": None,
                "flags": 1 << 18,  # GATEWAY_MESSAGE_CONTENT: the privileged intent is enabled
            }
        )

    async def _gateway_url(self, request: web.Request) -> web.Response:
        return _json({"url": self.gateway_url, "shards": 1})

    def _failed(self, method: str) -> web.Response | None:
        failure = self.take_failure(method)
        if failure is None:
            return None
        if failure.status == 429:
            retry = float(failure.retry_after or 1.0)
            body = {"message": "You are being rate limited.", "retry_after": retry, "global": False}
            headers = {"Via": "1.1 google", "Retry-After": str(retry), "X-RateLimit-Scope": "user"}
            return _json(body, status=429, headers=headers)
        return _json({"message": "Internal Server Error", "code": 0}, status=failure.status)

    async def _typing(self, request: web.Request) -> web.Response:
        channel_id = request.match_info["channel_id"]
        if not self._authorised(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        failed = self._failed("typing")
        if failed is not None:
            return failed
        self.record_activity(SentRecord("typing", channel_id))
        return web.Response(status=204)

    async def _edit_message(self, request: web.Request) -> web.Response:
        channel_id, message_id = request.match_info["channel_id"], request.match_info["message_id"]
        self.requests.append(("PATCH", f"/channels/{channel_id}/messages/{message_id}"))
        if not self._authorised(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        failed = self._failed("edit_message")
        if failed is not None:
            self.record_activity(SentRecord("edit_message", channel_id, message_id=message_id, raw={"failed": True}))
            return failed
        payload, _ = await self._payload(request)
        message = self.find_sent(channel_id, message_id)
        if message is None or self.message_authors.get(message_id) != str(self.bot_user["id"]):
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        content = str(payload.get("content") or "")
        if len(content) > 2000:
            return _json({"message": "Invalid Form Body", "code": 50035}, status=400)
        message.text = content
        message.raw = {**message.raw, "edited": True}
        self.record_activity(SentRecord("edit_message", channel_id, content, message_id=message_id))
        return _json({**self._message(message_id, channel_id, content, self.bot_user), "edited_timestamp": _now()})

    async def _create_message(self, request: web.Request) -> web.Response:
        channel_id = request.match_info["channel_id"]
        self.requests.append(("POST", f"/channels/{channel_id}/messages"))
        if not self._authorised(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        failed = self._failed("create_message")
        if failed is not None:
            return failed
        payload, files = await self._payload(request)
        nonce = payload.get("nonce")
        if nonce is not None and payload.get("enforce_nonce") and (channel_id, str(nonce)) in self.nonces:
            earlier = self.find_sent(channel_id, self.nonces[(channel_id, str(nonce))])
            if earlier is not None:  # Discord answers a repeated nonce with the message it already created
                self.record_activity(SentRecord("create_message", channel_id, earlier.text, raw={"nonce_seen": nonce}))
                return _json(self._message(earlier.message_id, channel_id, earlier.text, self.bot_user))
        known = {str(c) for c in self.channels} | {str(t) for t in self.threads}
        if channel_id not in known and not channel_id.startswith("7"):  # 7...: DM channels
            return _json({"message": "Unknown Channel", "code": 10003}, status=404)
        content = str(payload.get("content") or "")
        if len(content) > 2000:
            too_long = {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}
            body = {"message": "Invalid Form Body", "code": 50035, "errors": {"content": {"_errors": [too_long]}}}
            return _json(body, status=400)
        if not content and not files:
            return _json({"message": "Cannot send an empty message", "code": 50006}, status=400)
        message_id = self.snowflake()
        self.message_authors[message_id] = str(self.bot_user["id"])
        if nonce is not None:
            self.nonces[(channel_id, str(nonce))] = message_id
        reference = payload.get("message_reference") or {}
        await self.record(
            SentRecord(
                method="create_message",
                chat_id=channel_id,
                text=content,
                thread_id=channel_id if int(channel_id) in self.threads else None,
                reply_to=None if not reference else str(reference.get("message_id")),
                files=files,
                message_id=message_id,
                raw=payload,
            )
        )
        return _json(self._message(message_id, channel_id, content, self.bot_user))

    async def _payload(self, request: web.Request) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        if request.content_type == "application/json":
            return await request.json(), []
        payload: dict[str, Any] = {}
        files: list[dict[str, Any]] = []
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "payload_json":
                payload = json.loads(await part.text())
            elif part.name and part.name.startswith("files["):
                data = await part.read()
                name = part.filename or "file"
                file_id = self.snowflake()
                self.attachments[file_id] = bytes(data)
                files.append(
                    {
                        "file_id": file_id,
                        "name": name,
                        "content_type": part.headers.get("Content-Type", ""),
                        "size": len(data),
                        "ogg_valid": is_ogg(bytes(data)),
                    }
                )
        return payload, files

    def file_bytes(self, file_id: str) -> bytes:
        return self.attachments[file_id]

    async def _attachment(self, request: web.Request) -> web.Response:
        data = self.attachments.get(request.match_info["attachment_id"])
        if data is None:
            return web.Response(status=404)
        return web.Response(
            body=data, content_type=self.attachment_types.get(request.match_info["attachment_id"], "audio/ogg")
        )

    def _message(self, message_id: str, channel_id: str, content: str, author: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "id": message_id,
            "channel_id": channel_id,
            "type": 0,
            "content": content,
            "author": author,
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "flags": 0,
        }
        if not channel_id.startswith("7"):
            message["guild_id"] = str(self.guild_id)
        return message

    # ------------------------------------------------------------------ users

    async def user_message(
        self,
        channel_id: int | str,
        content: str,
        *,
        author_id: int | str = 501,
        author: str = "alice",
        dm: bool = False,
        thread_id: int | str | None = None,
        mention: bool = False,
        reply_to: str | None = None,
        voice: bytes | None = None,
        files: list[SimFile] | None = None,
    ) -> dict[str, Any]:
        """A user posts; every identified gateway session receives MESSAGE_CREATE. Returns the message.

        ``files`` become attachments served from the simulator's CDN path (``/attachments/{id}/{name}``),
        images with their width and height, as Discord describes them.
        """
        user = {"id": str(author_id), "username": author, "discriminator": "0", "avatar": None, "global_name": author}
        target = str(thread_id) if thread_id is not None else str(channel_id)
        if dm:
            target = f"7{author_id}"  # a stable DM channel id per user
        message = self._message(self.snowflake(), target, content, user)
        self.message_authors[message["id"]] = str(author_id)
        if mention:
            message["content"] = f"<@{self.bot_id}> {content}"
            message["mentions"] = [self.bot_user]
        if not dm:
            message["member"] = {"roles": [], "joined_at": _now(), "deaf": False, "mute": False}
        if reply_to is not None:
            message["message_reference"] = {"message_id": reply_to, "channel_id": target, "type": 0}
        if voice is not None:
            attachment_id = self.snowflake()
            self.attachments[attachment_id] = voice
            message["flags"] = VOICE_MESSAGE_FLAG
            message["attachments"] = [
                {
                    "id": attachment_id,
                    "filename": "voice-message.ogg",
                    "size": len(voice),
                    "url": f"{self.origin}/attachments/{attachment_id}/voice-message.ogg",
                    "proxy_url": f"{self.origin}/attachments/{attachment_id}/voice-message.ogg",
                    "content_type": "audio/ogg",
                    "duration_secs": 1.0,
                    "waveform": "AAAA",
                }
            ]
        for item in files or []:
            message["attachments"] = [*message["attachments"], self._file_attachment(item)]
        for session in list(self.sessions):
            if not session.identified:
                continue
            delivered = dict(message)
            privileged = not dm and not mention
            if privileged and not session.intents & MESSAGE_CONTENT_INTENT:
                delivered["content"] = ""  # what Discord does without the message-content intent
            await session.dispatch("MESSAGE_CREATE", delivered)
        return message

    async def user_message_from_json(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.user_message(
            body.get("channel_id", self.channels[0]),
            str(body.get("content", body.get("text", ""))),
            author_id=body.get("author_id", 501),
            author=str(body.get("author", "alice")),
            dm=bool(body.get("dm", False)),
            thread_id=body.get("thread_id"),
            mention=bool(body.get("mention", False)),
            reply_to=body.get("reply_to"),
            voice=tiny_opus_ogg() if body.get("voice") else None,
            files=[SimFile(sample_photo())] if body.get("photo") else None,
        )

    def _file_attachment(self, item: SimFile) -> dict[str, Any]:
        attachment_id = self.snowflake()
        self.attachments[attachment_id] = item.data
        self.attachment_types[attachment_id] = item.mime_type
        url = item.url or f"{self.origin}/attachments/{attachment_id}/{item.filename}"
        attachment: dict[str, Any] = {
            "id": attachment_id,
            "filename": item.filename,
            "size": len(item.data),
            "url": url,
            "proxy_url": url,
            "content_type": item.mime_type,
        }
        size = image_size(item.data) if item.is_image else None
        if size is not None:
            attachment["width"], attachment["height"] = size
        return attachment

    async def user_reaction(
        self, channel_id: int | str, message_id: int | str, user: int | str, emoji: str
    ) -> dict[str, Any]:
        """A user reacts to a message; sessions with the matching reactions intent get MESSAGE_REACTION_ADD.

        ``emoji`` is a Unicode emoji, or ``"name:id"`` for a guild's custom emoji. Returns the payload.
        """
        name, _, custom_id = emoji.partition(":")
        channel = str(channel_id)
        direct = channel.startswith("7")
        payload: dict[str, Any] = {
            "user_id": str(user),
            "channel_id": channel,
            "message_id": str(message_id),
            "emoji": {"id": custom_id or None, "name": name},
            "burst": False,
            "burst_colors": [],
            "type": 0,  # normal, not a super reaction
        }
        author = self.message_authors.get(str(message_id))
        if author is not None:  # Discord knows every message's author; we know those we saw
            payload["message_author_id"] = author
        if not direct:
            payload["guild_id"] = str(self.guild_id)
            member_user = {"id": str(user), "username": f"user{user}", "discriminator": "0", "avatar": None}
            payload["member"] = {
                "user": member_user,
                "roles": [],
                "joined_at": _now(),
                "deaf": False,
                "mute": False,
                "flags": 0,
            }
        needed = DIRECT_MESSAGE_REACTIONS_INTENT if direct else GUILD_MESSAGE_REACTIONS_INTENT
        for session in list(self.sessions):
            if session.identified and session.intents & needed:
                await session.dispatch("MESSAGE_REACTION_ADD", payload)
        return payload

    async def _post_user_reaction(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            payload = await self.user_reaction(
                body.get("channel_id", self.channels[0]),
                body["message_id"],
                body.get("user_id", 501),
                str(body.get("emoji", "👍")),
            )
        except (KeyError, ValueError) as exc:
            return web.json_response({"ok": False, "error": f"bad user reaction: {exc}"}, status=400)
        return web.json_response({"ok": True, "result": payload})

    # ------------------------------------------------------------------ the gateway

    def _guild(self) -> dict[str, Any]:
        guild_id = str(self.guild_id)
        channels = [
            {
                "id": str(c),
                "type": 0,
                "name": f"channel-{c}",
                "position": i,
                "permission_overwrites": [],
                "guild_id": guild_id,
            }
            for i, c in enumerate(self.channels)
        ]
        threads = [
            {
                "id": str(t),
                "type": 11,
                "name": f"thread-{t}",
                "parent_id": str(parent),
                "owner_id": "501",
                "guild_id": guild_id,
                "thread_metadata": {
                    "archived": False,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": _now(),
                    "locked": False,
                },
                "message_count": 0,
                "member_count": 1,
            }
            for t, parent in self.threads.items()
        ]
        everyone = {"id": guild_id, "name": "@everyone", "permissions": "1071698660929", "position": 0, "color": 0,
                    "hoist": False, "managed": False, "mentionable": False}  # fmt: skip
        return {
            "id": guild_id,
            "name": "Simulated guild",
            "icon": None,
            "owner_id": "501",
            "roles": [everyone],
            "emojis": [],
            "stickers": [],
            "features": [],
            "channels": channels,
            "threads": threads,
            "members": [],
            "voice_states": [],
            "presences": [],
            "member_count": 2,
            "large": False,
            "unavailable": False,
            "joined_at": _now(),
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
        }

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        session = _Session(ws)
        self.sessions.append(session)
        try:
            await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                await self._on_frame(session, json.loads(frame.data))
        finally:
            self.sessions.remove(session)
        return ws

    async def _on_frame(self, session: _Session, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        data: dict[str, Any] = frame.get("d") or {}
        if op == 1:
            await session.ws.send_str(json.dumps({"op": 11}))
        elif op == 2:
            self.identifies.append(data)
            if data.get("token") != self.token:
                await session.ws.close(code=4004, message=b"Authentication failed.")
                return
            session.intents = int(data.get("intents", 0))
            session.identified = True
            await session.dispatch(
                "READY",
                {
                    "v": 10,
                    "user": self.bot_user,
                    "guilds": [{"id": str(self.guild_id), "unavailable": True}],
                    "session_id": f"sim-session-{self.snowflake()}",
                    "resume_gateway_url": self.gateway_url,
                    "application": {"id": str(self.bot_id + 1), "flags": 1 << 18},
                    "private_channels": [],
                    "relationships": [],
                },
            )
            await session.dispatch("GUILD_CREATE", self._guild())
        elif op == 6:
            # We keep no session history: ask the client to identify afresh.
            await asyncio.sleep(0.1)
            await session.ws.send_str(json.dumps({"op": 9, "d": False}))
