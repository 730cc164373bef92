"""HTTP surface of the web chat: the page, ``/api/session``, ``POST /api/upload`` (an image), ``POST /api/chat``,
reply polling and ``/api/rating``.

``POST /api/chat/stream`` takes the same body and answers the same errors as ``POST /api/chat``, but
once the message is admitted it answers ``text/event-stream``: ``typing``, then ``text`` events (each
the whole answer so far), then one ``reply`` event with the body ``POST /api/chat`` would have
returned (or ``timeout``, after which the reply can be polled as usual).

Every route acts for the caller ``identity`` establishes (a browser session, or a site's API key)
and only on that caller's conversation: reading a reply, resending a message id and rating a reply
of someone else's conversation answer 403/404 exactly as a reply that does not exist. Browser
sessions are also limited per session and per client address before admission (``ClientLimiter``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import OutOfMemoryError, RedisError

from adapters.base import BUSY_NOTICE, Admission, Admit
from adapters.webchat.identity import Caller, Identities, IdentityError
from adapters.webchat.inbound import BOT_ID, ChatRequest, RatingRequest, envelope_from_chat
from adapters.webchat.live_hub import LiveHub
from adapters.webchat.outbound import REPLY_TTL_S, reply_key
from adapters.webchat.replies import ReplyWaiter
from adapters.webchat.uploads import UPLOAD_PATH, UploadPolicy, known_uploads, sniff_image, store_upload
from gateway.shared.envelope import Envelope, EnvelopeError, Reply
from gateway.shared.events import emit_event
from gateway.shared.identity import user_key
from gateway.shared.keys import webchat_rating

__all__ = ["ClientLimits", "build_webchat_router"]

log = logging.getLogger(__name__)

_STATUS = {
    Admission.RATE_LIMITED: 429,
    Admission.BLOCKED: 403,
    Admission.REJECTED: 400,
    Admission.UNAVAILABLE: 503,  # nothing was stored: the client should send the same message id again
    Admission.BUSY: 503,
}
_BUSY_RETRY_S = 30
_UNAVAILABLE_RETRY_S = 2  # Redis restarting: back within seconds
_KEEPALIVE_S = 15.0  # an SSE comment this often keeps proxies from closing a quiet stream
_STATIC = {"webchat.js": "text/javascript; charset=utf-8", "webchat.css": "text/css; charset=utf-8"}


class LimitVerdict(Protocol):
    @property
    def allowed(self) -> bool: ...

    @property
    def limit(self) -> str | None: ...

    @property
    def retry_after_s(self) -> float: ...


class ClientLimits(Protocol):
    async def check(self, action: Any, session: str, address: str) -> LimitVerdict: ...


def _message_key(conversation_id: str, message_id: str) -> str:
    return f"webchat:{BOT_ID}:{conversation_id}:{message_id}"


def _reply_body(reply: Reply, message_id: str, conversation_id: str) -> dict[str, Any]:
    return {
        "text": reply.text,
        "conversation_id": conversation_id,
        "message_id": message_id,
        "reason": reply.reason,
        "attachments": [
            {
                "mime_type": item.mime_type,
                "is_voice": item.is_voice,
                "duration_s": item.duration_s,
                "url": item.url or f"data:{item.mime_type};base64,{item.data_b64}",
            }
            for item in reply.attachments
        ],
    }


def _error(status: int, error: str, detail: str, **extra: Any) -> JSONResponse:
    headers = {"Retry-After": str(extra.pop("retry_after"))} if "retry_after" in extra else None
    return JSONResponse({"error": error, "detail": detail, **extra}, status_code=status, headers=headers)


def _busy(detail: str) -> JSONResponse:
    return _error(503, "busy", detail, notice=BUSY_NOTICE, retry_after=_BUSY_RETRY_S)


def _is_full(exc: RedisError) -> bool:
    # redis-py turns Redis' "OOM command not allowed when used memory > 'maxmemory'" into OutOfMemoryError.
    return isinstance(exc, OutOfMemoryError) or "used memory > 'maxmemory'" in str(exc)


def _client_address(request: Request) -> str:
    # request.client is the TCP peer, or X-Forwarded-For's client when the peer is a trusted proxy
    # (the gateway mounts uvicorn's ProxyHeadersMiddleware with PATCHBAY_TRUSTED_PROXIES).
    return request.client.host if request.client else "unknown"


def build_webchat_router(
    admit: Admit,
    waiter: ReplyWaiter,
    reply_timeout_s: float,
    *,
    identities: Identities,
    limits: ClientLimits,
    uploads: UploadPolicy | None = None,
    live: LiveHub | None = None,
) -> APIRouter:
    uploads = uploads or UploadPolicy()
    router = APIRouter()
    redis: Redis = waiter.redis
    static = resources.files("adapters.webchat").joinpath("static")
    page = static.joinpath("index.html").read_text(encoding="utf-8")
    assets = {name: static.joinpath(name).read_text(encoding="utf-8") for name in _STATIC}

    def finish(response: Response, request: Request, caller: Caller | None) -> Response:
        if caller is not None and caller.new_cookie:
            identities.set_cookie(response, request, caller.new_cookie)
        return response

    def caller_of(request: Request, named_user: str | None, *, create: bool, need_user: bool = True) -> Caller | None:
        return identities.caller(request, named_user, create=create, need_user=need_user)

    async def within_limits(request: Request, caller: Caller, action: str) -> JSONResponse | None:
        if caller.via == "key":
            return None
        assert caller.session_id is not None
        address = _client_address(request)
        verdict = await limits.check(action, caller.session_id, address)
        if verdict.allowed:
            return None
        wait = max(1, round(verdict.retry_after_s))
        log.info("web chat client limited address=%s session=%s limit=%s", address, caller.session_id, verdict.limit)
        if action == "chat":
            await emit_event(
                redis,
                {
                    "kind": "message",
                    "platform": "webchat",
                    "user_id": user_key("webchat", BOT_ID, caller.user_id),
                    "conversation_id": caller.own_conversation,
                    "decision": str(Admission.RATE_LIMITED),
                    "reason": f"client limit: {verdict.limit}",
                    "ts_ingress": time.time(),
                },
            )
        return _error(
            429,
            str(Admission.RATE_LIMITED),
            f"client limit: {verdict.limit}",
            notice=f"Too many messages from here ({verdict.limit}). Try again in about {wait} s.",
            retry_after=wait,
        )

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def chat_page(request: Request) -> Response:
        # The session starts on the first visit: the page needs no setup and no script-visible id.
        caller = caller_of(request, None, create=True)
        return finish(HTMLResponse(page, headers={"Cache-Control": "no-store"}), request, caller)

    @router.get("/webchat/static/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in assets:
            return _error(404, "not_found", "no such file")
        return Response(assets[name], media_type=_STATIC[name], headers={"Cache-Control": "no-cache"})

    @router.get("/api/session")
    async def session(request: Request) -> Response:
        """Who this browser is (its session is created now if it has none)."""
        try:
            caller = caller_of(request, None, create=True)
        except IdentityError as exc:
            return _error(exc.status, exc.error, exc.detail)
        assert caller is not None
        body = {"user_id": caller.user_id, "conversation_id": caller.own_conversation, "via": caller.via}
        if caller.via == "key":
            body = {"via": "key", "detail": "an API key acts for the user_id each request names"}
        return finish(JSONResponse(body), request, caller)

    @router.post(UPLOAD_PATH)
    async def upload(request: Request, user_id: str | None = None) -> Response:
        """An image for the next message: the body is the file (``Content-Type: image/…``); answers its id.

        A browser uploads for its own session; an API key names the user (``?user_id=``), as in /api/chat.
        """
        try:
            caller = caller_of(request, user_id, create=True)
        except IdentityError as exc:
            return _error(exc.status, exc.error, exc.detail)
        assert caller is not None
        declared = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if not declared.startswith("image/"):
            return finish(
                _error(415, "not_an_image", "send the image itself with its image/* content type"), request, caller
            )
        data = await request.body()  # at most PATCHBAY_WEBCHAT_MAX_IMAGE_BYTES: the edge refused larger (413)
        mime = sniff_image(data)
        if mime is None:
            return finish(
                _error(415, "not_an_image", "the body is not a JPEG, PNG, GIF or WebP image"), request, caller
            )
        try:
            refused = await within_limits(request, caller, "upload")
            if refused is not None:
                return finish(refused, request, caller)
            owner = user_key("webchat", BOT_ID, caller.user_id)
            upload_id = await store_upload(redis, owner, data, mime, uploads.ttl_s)
        except RedisError as exc:
            if _is_full(exc):
                return finish(_busy("the message store is full"), request, caller)
            raise
        body = {"upload_id": upload_id, "mime_type": mime, "bytes": len(data), "expires_in_s": uploads.ttl_s}
        return finish(JSONResponse(body), request, caller)

    async def admitted(
        body: ChatRequest, request: Request, stream: asyncio.Queue[dict[str, Any]] | None = None
    ) -> tuple[Response | None, Caller | None, Envelope | None, str]:
        """Identity, client limits, admission: an error response, or the admitted envelope (its reply expected)."""
        try:
            caller = caller_of(request, body.user_id, create=True)
            assert caller is not None
            conversation_id = caller.conversation(body.conversation_id)
        except IdentityError as exc:
            return _error(exc.status, exc.error, exc.detail), None, None, ""
        try:
            refused = await within_limits(request, caller, "chat")
        except RedisError as exc:
            if _is_full(exc):
                return finish(_busy("the message store is full"), request, caller), caller, None, ""
            raise
        if refused is not None:
            return finish(refused, request, caller), caller, None, ""
        images = await known_uploads(redis, user_key("webchat", BOT_ID, caller.user_id), body.images)
        if images is None:
            detail = "an image id is unknown or expired: upload it again (POST /api/upload)"
            return finish(_error(422, "unknown_image", detail), request, caller), caller, None, ""
        try:
            envelope = envelope_from_chat(
                body, user_id=caller.user_id, conversation_id=conversation_id, raw=body.model_dump(), images=images
            )
        except (EnvelopeError, ValueError) as exc:
            return finish(_error(422, "invalid_message", str(exc)), request, caller), caller, None, ""
        key = envelope.dedupe_key
        waiter.expect(key)  # before admission, so an instant reply cannot slip past us
        if stream is not None and live is not None:
            live.listen_with(key, stream)
        result = await admit(envelope)
        if result.decision not in (Admission.QUEUED, Admission.DUPLICATE):
            waiter.forget(key)
            if stream is not None and live is not None:
                live.forget(key, stream)
            extra: dict[str, Any] = {"notice": result.notice, "message_id": envelope.message_id}
            if result.decision is Admission.BUSY:
                extra["retry_after"] = _BUSY_RETRY_S
            elif result.decision is Admission.UNAVAILABLE:  # nothing stored: send the same message id again soon
                extra["retry_after"] = _UNAVAILABLE_RETRY_S
            response = _error(_STATUS.get(result.decision, 400), str(result.decision), result.reason, **extra)
            return finish(response, request, caller), caller, None, ""
        return None, caller, envelope, conversation_id

    def timed_out(envelope: Envelope) -> JSONResponse:
        return _error(
            504,
            "timeout",
            f"no reply within {reply_timeout_s:.0f}s; the message is queued and will be answered",
            message_id=envelope.message_id,
            conversation_id=envelope.conversation_id,
        )

    @router.post("/api/chat")
    async def chat(body: ChatRequest, request: Request) -> Response:
        refused, caller, envelope, conversation_id = await admitted(body, request)
        if refused is not None or envelope is None:
            assert refused is not None
            return refused
        reply = await waiter.wait(envelope.dedupe_key, reply_timeout_s)
        if reply is None:
            return finish(timed_out(envelope), request, caller)
        return finish(JSONResponse(_reply_body(reply, envelope.message_id, conversation_id)), request, caller)

    @router.post("/api/chat/stream")
    async def chat_stream(body: ChatRequest, request: Request) -> Response:
        """``POST /api/chat`` as Server-Sent Events: "typing", the text as it is written, then the reply."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1)
        refused, caller, envelope, conversation_id = await admitted(body, request, queue)
        if refused is not None or envelope is None:
            assert refused is not None
            return refused
        events = _sse_events(envelope, conversation_id, queue)
        response = StreamingResponse(
            events, media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )
        return finish(response, request, caller)

    async def _sse_events(
        envelope: Envelope, conversation_id: str, queue: asyncio.Queue[dict[str, Any]]
    ) -> AsyncIterator[str]:
        key = envelope.dedupe_key
        future = waiter.expect(key)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + reply_timeout_s
        try:
            stored = await waiter.fetch(key)  # a resend of a message already answered
            if stored is not None:
                yield _sse("reply", _reply_body(stored, envelope.message_id, conversation_id))
                return
            if live is not None:
                latest = await live.latest(key)  # a page that (re)connects mid-answer starts from the text so far
                if latest is not None and "text" in latest:
                    yield _sse("text", {"text": latest["text"]})
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    yield _sse("timeout", json.loads(bytes(timed_out(envelope).body)))
                    return
                getter: asyncio.Future[Any] = asyncio.ensure_future(queue.get())
                waiting: set[asyncio.Future[Any]] = {getter, future}
                done, _ = await asyncio.wait(
                    waiting, timeout=min(_KEEPALIVE_S, remaining), return_when=asyncio.FIRST_COMPLETED
                )
                if future in done:
                    getter.cancel()
                    yield _sse("reply", _reply_body(future.result(), envelope.message_id, conversation_id))
                    return
                if getter in done:
                    event = getter.result()
                    if "text" in event:
                        yield _sse("text", {"text": event["text"]})
                    elif event.get("typing"):
                        yield _sse("typing", {})
                else:
                    getter.cancel()
                    yield ": keepalive\n\n"
        finally:
            waiter.forget(key)
            if live is not None:
                live.forget(key, queue)

    @router.get("/api/chat/{conversation_id}/{message_id}")
    async def fetch_reply(conversation_id: str, message_id: str, request: Request) -> Response:
        """Poll for a reply after a 504: only the conversation's own session (or an API key) may."""
        try:
            caller = caller_of(request, None, create=False, need_user=False)
            if caller is None:
                return _error(401, "no_session", "this browser has no web chat session")
            own = caller.conversation(conversation_id)
        except IdentityError as exc:
            # Someone else's conversation looks exactly like a reply that does not exist.
            if exc.status == 403:
                return _error(404, "pending", "no such reply", message_id=message_id)
            return _error(exc.status, exc.error, exc.detail)
        reply = await waiter.fetch(_message_key(own, message_id))
        if reply is None:
            return _error(404, "pending", "no such reply", message_id=message_id)
        return JSONResponse(_reply_body(reply, message_id, own))

    @router.post("/api/rating")
    async def rate(request: Request) -> Response:
        """👍/👎 on one of the caller's own replies: satisfaction analytics, the first vote per reply counts."""
        try:
            body = RatingRequest.model_validate(await _json(request))
        except (ValidationError, ValueError) as exc:
            detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            return _error(422, "invalid_rating", f"need message_id and value 1 or -1 ({detail})")
        try:
            caller = caller_of(request, body.user_id, create=False)
            if caller is None:
                return _error(401, "no_session", "rate replies from the chat that received them")
            conversation_id = caller.conversation(body.conversation_id)
        except IdentityError as exc:
            if exc.status == 403:
                return _error(404, "no_such_reply", "no such reply to rate")
            return _error(exc.status, exc.error, exc.detail)
        try:
            refused = await within_limits(request, caller, "rating")
            if refused is not None:
                return refused
            key = _message_key(conversation_id, body.message_id)
            if not await redis.exists(reply_key(key)):
                return _error(404, "no_such_reply", "no such reply to rate (replies can be rated for an hour)")
            # The first vote on a reply counts; a changed mind is not a second vote (the summary counts events).
            first = await redis.set(webchat_rating(key), body.value, ex=REPLY_TTL_S, nx=True)
        except RedisError as exc:
            if _is_full(exc):
                return _busy("the message store is full")
            raise
        if not first:
            return JSONResponse({"ok": True, "counted": False})
        await emit_event(
            redis,
            {
                "kind": "reaction",
                "platform": "webchat",
                "key": key,
                "user_id": user_key("webchat", BOT_ID, caller.user_id),
                "value": body.value,
                "ts": time.time(),
            },
        )
        return JSONResponse({"ok": True, "counted": True})

    return router


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        raise ValueError("the body is not JSON") from None
