"""Every Redis key name Patchbay's own code uses, in one module (the patch framework keeps its own).

One place, so that an operator reading ``redis-cli --scan`` can tell what each key is, and so that
the gateway (which writes a message's first record) and the workers (which finish it) can never
disagree about a name. Prefixes that an operator can change through settings have their default here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ANALYTICS_QUEUE",
    "DONE_TTL_S",
    "EGRESS_PREFIX",
    "EMOTION_PREFIX",
    "LIMITS_PREFIX",
    "LLM_CACHE_NAMESPACE",
    "VOICE_PREFIX",
    "WEBCHAT_REPLY_CHANNEL",
    "WORKER_HEARTBEAT_PREFIX",
    "MessageKeys",
    "emotion_state",
    "forget_result",
    "llm_cache_user_index",
    "message_keys",
    "voice_conversation",
    "voice_user",
    "webchat_rating",
    "webchat_reply",
    "webchat_user_replies",
]

# Workers announce themselves here (one key per process, with a TTL); /healthz counts them.
WORKER_HEARTBEAT_PREFIX = "patchbay:workers:"

# The web chat: a worker stores the reply, then announces it on the channel the gateway listens to.
WEBCHAT_REPLY_CHANNEL = "patchbay:webchat:replies"


def webchat_reply(message_key: str) -> str:
    return f"patchbay:webchat:reply:{message_key}"


def webchat_user_replies(user_key: str) -> str:
    """A set of the reply keys stored for one user: forgetting the user deletes them without a SCAN."""
    return f"patchbay:webchat:replies-of:{user_key}"


def webchat_rating(message_key: str) -> str:
    """The rating a web chat reply got (+1/-1): a repeated identical rating is not counted twice."""
    return f"patchbay:webchat:rating:{message_key}"


# Analytics events wait here for the gateway's writer (``PATCHBAY_ANALYTICS_QUEUE`` overrides it).
ANALYTICS_QUEUE = "pb:analytics:events"

# Defaults of prefixes that settings can override (docs list the setting next to each).
VOICE_PREFIX = "patchbay:voice:"
EMOTION_PREFIX = "patchbay:emotion:"
LLM_CACHE_NAMESPACE = "patchbay:llm:cache"
EGRESS_PREFIX = "patchbay:egress"
LIMITS_PREFIX = "pb"


def voice_user(user_key: str, prefix: str = VOICE_PREFIX) -> str:
    """A user's ``/voice on|off`` choice; ``user_key`` is platform-qualified (``gateway.shared.identity``)."""
    return f"{prefix}user:{user_key}"


def voice_conversation(conversation_key: str, prefix: str = VOICE_PREFIX) -> str:
    """The operator's voice-on switch of one conversation (``platform:bot:conversation``)."""
    return f"{prefix}conversation:{conversation_key}"


def emotion_state(user_key: str, prefix: str = EMOTION_PREFIX) -> str:
    return f"{prefix}state:{user_key}"


def llm_cache_user_index(user_key: str, namespace: str = LLM_CACHE_NAMESPACE) -> str:
    """A set of the LLM cache entries stored while answering one user: forgetting the user drops them."""
    return f"{namespace}:by-user:{user_key}"


# Forgetting runs on a worker (it owns memory and the LLM cache); the admin API waits for its result here.
FORGET_RESULT_PREFIX = "patchbay:forget:result:"


def forget_result(request_id: str) -> str:
    return FORGET_RESULT_PREFIX + request_id


# How long a message's "seen" and "done" records are kept: a platform resend after that is a new message.
DONE_TTL_S = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class MessageKeys:
    """The ledger's keys for one message and its conversation."""

    done: str
    claim: str
    seq: str
    done_seq: str
    seen: str


def message_keys(message_key: str, conversation_key: str) -> MessageKeys:
    return MessageKeys(
        done=f"patchbay:msg:{message_key}:done",
        claim=f"patchbay:msg:{message_key}:claim",
        seen=f"patchbay:msg:{message_key}:seen",
        seq=f"patchbay:conv:{conversation_key}:seq",
        done_seq=f"patchbay:conv:{conversation_key}:done_seq",
    )
