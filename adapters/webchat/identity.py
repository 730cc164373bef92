"""Who is calling the web chat: a browser session the gateway issued, or a site holding an API key.

The client never chooses who it is. A browser gets a **session cookie** on its first visit
(``GET /``, or its first ``POST /api/chat``): a random session id and its HMAC-SHA256 under the
gateway's secret (``PATCHBAY_SECRET_KEY`` or ``<data_dir>/secret.key``), ``HttpOnly`` (scripts
cannot read it), ``SameSite=Lax`` (other sites cannot post with it), ``Secure`` over https. Its
user id is ``session-<id>`` and its one conversation ``dm-session-<id>``; a request that names any
other user or conversation is refused. Nothing is stored server-side: the signature is the proof.

A site that embeds the web chat for its own logged-in users calls the API **server to server**
with ``Authorization: Bearer <key>`` (``PATCHBAY_WEBCHAT_API_KEYS``, several for rotation). Only
then may the body name ``user_id`` and ``conversation_id``; the ``session-`` namespace stays
reserved for browsers, so a key holder cannot reach a browser user's conversation either. Every key
acts for the same site: keys are interchangeable, not tenants.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from fastapi import Request, Response

__all__ = [
    "SESSION_CONVERSATION_PREFIX",
    "SESSION_COOKIE",
    "SESSION_USER_PREFIX",
    "Caller",
    "Identities",
    "IdentityError",
]

SESSION_COOKIE = "patchbay_session"
SESSION_USER_PREFIX = "session-"
SESSION_CONVERSATION_PREFIX = "dm-session-"
_COOKIE_MAX_AGE_S = 400 * 86400  # the longest lifetime browsers honour
_SIGNATURE_CONTEXT = b"patchbay-webchat-session-v1:"


class IdentityError(Exception):
    """The request's credentials or the identity it names are not acceptable; ``status`` says how."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


@dataclass(frozen=True, slots=True)
class Caller:
    """The web chat user a request acts for, and how that was established."""

    user_id: str
    via: Literal["session", "key"]
    session_id: str | None = None  # the browser session (per-client limits), None for a key
    new_cookie: str | None = None  # set on the response: the session was minted by this request

    @property
    def own_conversation(self) -> str:
        return f"dm-{self.user_id}"

    def conversation(self, named: str | None) -> str:
        """The conversation this request writes to or reads from, or IdentityError when it may not."""
        if self.via == "session":
            if named is not None and named != self.own_conversation:
                raise IdentityError(403, "forbidden", "a browser session can only use its own conversation")
            return self.own_conversation
        if named is None:
            return self.own_conversation
        if named.startswith(SESSION_CONVERSATION_PREFIX):
            raise IdentityError(403, "forbidden", "conversations named dm-session-… belong to browser sessions")
        return named


class Identities:
    def __init__(self, secret: bytes, api_keys: list[str], cookie_secure: str = "auto") -> None:
        if not secret:
            raise ValueError("the web chat needs a session secret")
        self._secret = secret
        self._keys = [key.encode() for key in api_keys if key]
        self._cookie_secure = cookie_secure

    # ------------------------------------------------------------------ cookies

    def _signature(self, session_id: str) -> str:
        digest = hmac.new(self._secret, _SIGNATURE_CONTEXT + session_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def mint(self) -> tuple[str, str]:
        """A new session: (session id, cookie value)."""
        session_id = secrets.token_urlsafe(18)
        return session_id, f"{session_id}.{self._signature(session_id)}"

    def verify(self, cookie: str | None) -> str | None:
        """The session id of a cookie this gateway (or a replica sharing its secret) issued; None otherwise."""
        if not cookie or cookie.count(".") != 1 or len(cookie) > 200:
            return None
        session_id, signature = cookie.split(".")
        if not session_id or not hmac.compare_digest(signature.encode(), self._signature(session_id).encode()):
            return None
        return session_id

    def set_cookie(self, response: Response, request: Request, value: str) -> None:
        secure = request.url.scheme == "https" if self._cookie_secure == "auto" else self._cookie_secure == "true"
        response.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=_COOKIE_MAX_AGE_S,
            path="/",
            httponly=True,
            samesite="lax",
            secure=secure,
        )

    # ------------------------------------------------------------------ callers

    def _key_holder(self, request: Request) -> bool:
        """True for a valid API key; False without an Authorization header; IdentityError for a wrong one."""
        header = request.headers.get("authorization")
        if header is None:
            return False
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not self._keys:
            raise IdentityError(401, "unauthorized", "the web chat API takes a session cookie or a valid API key")
        # Every key compared, whatever matches first: the time taken says nothing about which key is close.
        matches = [hmac.compare_digest(given.strip().encode(), key) for key in self._keys]
        if not any(matches):
            raise IdentityError(401, "unauthorized", "the web chat API key is not valid")
        return True

    def caller(
        self, request: Request, named_user: str | None, *, create: bool, need_user: bool = True
    ) -> Caller | None:
        """Who this request acts for; a new session when ``create`` and it has none; None when it has none.

        ``need_user=False``: an API key may act without naming a user (reading a reply of a conversation).
        """
        if self._key_holder(request):
            if not named_user and not need_user:
                return Caller("", "key")
            if not named_user:
                raise IdentityError(422, "invalid_request", "user_id: required with an API key")
            if named_user.startswith(SESSION_USER_PREFIX):
                raise IdentityError(422, "invalid_request", "user_id: session-… ids belong to browser sessions")
            return Caller(named_user, "key")
        session_id = self.verify(request.cookies.get(SESSION_COOKIE))
        cookie: str | None = None
        if session_id is None:
            if not create:
                return None
            session_id, cookie = self.mint()
        caller = Caller(SESSION_USER_PREFIX + session_id, "session", session_id, cookie)
        if named_user is not None and named_user != caller.user_id:
            raise IdentityError(
                403, "forbidden", "a browser session cannot name a user_id: it is the session's own (see /api/session)"
            )
        return caller
