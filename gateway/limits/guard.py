"""Admission's one call: ingress limits, block list, flood, spam and rate limits for one envelope.

Ingress size checks need no Redis; everything else is one Lua call (guard.lua), so a message costs
the gateway a single round trip however many limits are configured, and concurrent messages share
one write (``gateway.limits.batching``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis
from prometheus_client import Counter

from gateway.limits.batching import ScriptBatcher
from gateway.limits.blocks import BlockList
from gateway.limits.keys import LimitKeys, subject
from gateway.limits.ratelimit import LimitRequest, RateLimiter
from gateway.limits.scripts import guard_script
from gateway.limits.settings import LimitSettings
from gateway.shared.envelope import Envelope

__all__ = ["Guard", "GuardAction", "GuardDecision", "normalised_text_hash"]

log = logging.getLogger(__name__)

GuardAction = Literal["allow", "rate_limited", "blocked", "rejected"]

DECISIONS = Counter("patchbay_guard_decisions_total", "admission guard decisions", ["action", "reason"])


@dataclass(frozen=True, slots=True)
class GuardDecision:
    action: GuardAction
    reason: str = ""  # machine-readable: user_blocked, conversation_blocked, muted, flood, spam, too_long, ...
    notice: str | None = None  # text to show the user now, or None (never repeated within a window)
    limit: str | None = None  # the rate limit hit, e.g. "user 6 per minute"
    retry_after_s: float = 0.0


ALLOW = GuardDecision("allow")
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalised_text_hash(text: str, min_chars: int) -> str | None:
    """Spam copies differ in case, spacing and punctuation; None when the text is too short to judge."""
    folded = _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()
    if len(folded) < min_chars:
        return None
    return hashlib.blake2b(folded.encode(), digest_size=12).hexdigest()


def _minutes(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


class Guard:
    def __init__(self, redis: aioredis.Redis, settings: LimitSettings | None = None, *, coalesce: bool = True) -> None:
        """``coalesce=False`` sends every decision on its own (bench/ratelimit.py's same-run baseline)."""
        self.settings = settings or LimitSettings()
        self.limiter = RateLimiter(redis, self.settings)
        self.blocks = BlockList(redis, self.settings.key_prefix)
        self._keys = LimitKeys(self.settings.key_prefix)
        settings = self.settings
        mute_reason = f"flood: more than {settings.flood_messages} messages in {settings.flood_window_s:g} s"
        # The configuration is written into the script (guard.lua's CONF): per message only what changes.
        self.script_text = guard_script(
            [
                settings.flood_messages,
                int(settings.flood_window_s * 1000),
                int(settings.mute_s * 1000),
                mute_reason,
                settings.spam_conversations,
                int(settings.spam_window_s * 1000),
                *self.limiter.spec_args(),
            ]
        )
        # Concurrent decisions share a write (gateway/limits/batching.py).
        self._script = ScriptBatcher(redis, self.script_text, max_batch=256 if coalesce else 1)

    @classmethod
    def from_url(cls, url: str, settings: LimitSettings | None = None) -> Guard:
        return cls(aioredis.Redis.from_url(url), settings)

    def ingress(self, envelope: Envelope) -> GuardDecision | None:
        """Size limits and empty messages, checked before anything touches Redis."""
        if not envelope.text.strip() and not envelope.attachments and envelope.voice is None:
            # A sticker, an emptied mention, whitespace: nothing to answer, and no LLM call to spend on it.
            return GuardDecision("rejected", "empty: no text and no attachment")
        chars, limit = len(envelope.text), self.settings.max_message_chars
        if chars > limit:
            return GuardDecision(
                "rejected", "too_long", f"Your message is {chars:,} characters long; the limit is {limit:,}."
            )
        files = len(envelope.attachments) + (1 if envelope.voice else 0)
        if files > self.settings.max_attachments:
            return GuardDecision(
                "rejected",
                "too_many_attachments",
                f"Your message has {files} attachments; at most {self.settings.max_attachments} are accepted.",
            )
        return None

    async def check(self, envelope: Envelope, *, now: float | None = None) -> GuardDecision:
        """``now`` (epoch s) is for tests; by default the Redis server's clock decides."""
        decision = self.ingress(envelope) or await self._check_redis(envelope, now)
        DECISIONS.labels(decision.action, decision.reason or "ok").inc()
        if decision.action != "allow":
            log.info("guard %s %s: %s", decision.action, envelope.dedupe_key, decision.reason)
        return decision

    def script_call(self, envelope: Envelope, now: float | None) -> tuple[list[str], list[str | int]]:
        """The keys and arguments of guard.lua for this message (also what bench/ratelimit.py replays)."""
        settings, platform = self.settings, str(envelope.platform)
        # The qualified user (``slack:<team>:U1``): blocks, mutes, flood and spam keys and the user's buckets.
        user = envelope.user_key
        conversation = subject(platform, envelope.conversation_id)
        text_hash = normalised_text_hash(envelope.text, settings.spam_min_chars)
        request = LimitRequest(platform, envelope.bot_id, envelope.conversation_id, envelope.author_id, user)
        keys = [
            self._keys.blocked_users,
            self._keys.blocked_conversations,
            self._keys.mute(user),
            self._keys.flood(user),
            self._keys.spam(user, text_hash) if text_hash else "",
            *self.limiter.bucket_keys(request),
        ]
        args: list[str | int] = ["" if now is None else str(int(now * 1000)), user, conversation]
        return keys, args

    async def _check_redis(self, envelope: Envelope, now: float | None) -> GuardDecision:
        keys, args = self.script_call(envelope, now)
        code, detail, retry_ms, notify, hit = await self._script(keys, args)
        detail_text = detail.decode() if isinstance(detail, bytes) else str(detail)
        return self._decide(int(code), detail_text, int(retry_ms) / 1000, bool(notify), int(hit))

    def _decide(self, code: int, detail: str, retry_s: float, notify: bool, hit: int) -> GuardDecision:
        if code == 0:
            return ALLOW
        if code in (1, 2):
            reason = json.loads(detail).get("reason", "")
            kind = "user_blocked" if code == 1 else "conversation_blocked"
            return GuardDecision("blocked", f"{kind}: {reason}" if reason else kind)
        if code == 3:
            return GuardDecision("blocked", f"muted ({detail})", retry_after_s=retry_s)
        if code == 4:
            muted = f"Too many messages at once: I'll ignore you for {_minutes(retry_s)}."
            return GuardDecision("blocked", f"muted ({detail})", muted, retry_after_s=retry_s)
        if code == 5:
            return GuardDecision("blocked", "spam: the same message in too many conversations")
        limit = self.limiter.decision(hit, int(retry_s * 1000), int(notify))
        notice: str | None = None
        if limit.notify:
            wait = max(1, round(limit.retry_after_s))
            notice = f"You're sending messages faster than I can answer ({limit.limit}). Try again in about {wait} s."
        return GuardDecision("rate_limited", f"rate limit: {limit.limit}", notice, limit.limit, limit.retry_after_s)
