"""Every Redis key name Patchbay's own code uses, in one module (the patch framework keeps its own).

One place, so that an operator reading ``redis-cli --scan`` can tell what each key is, and so that
the gateway (which writes a message's first record) and the workers (which finish it) can never
disagree about a name. Prefixes that an operator can change through settings have their default here.
"""

from __future__ import annotations

__all__ = [
    "ANALYTICS_QUEUE",
    "CLAIM_PREFIX",
    "DISPATCHED",
    "DONE_TTL_S",
    "EGRESS_PREFIX",
    "EMOTION_PREFIX",
    "LEDGER_OPEN",
    "LIMITS_PREFIX",
    "LLM_CACHE_NAMESPACE",
    "MESSAGE_PREFIX",
    "STARTED",
    "VOICE_PREFIX",
    "WEBCHAT_REPLY_CHANNEL",
    "WEBCHAT_STREAM_CHANNEL",
    "WORKER_HEARTBEAT_PREFIX",
    "claim",
    "conversation_open",
    "conversation_seq",
    "emotion_state",
    "forget_result",
    "llm_cache_user_index",
    "message_record",
    "voice_conversation",
    "voice_user",
    "webchat_rating",
    "webchat_reply",
    "webchat_stream",
    "webchat_upload",
    "webchat_user_replies",
]

# Workers announce themselves here (one key per process, with a TTL); /healthz counts them.
WORKER_HEARTBEAT_PREFIX = "patchbay:workers:"

# The web chat: a worker stores the reply, then announces it on the channel the gateway listens to.
WEBCHAT_REPLY_CHANNEL = "patchbay:webchat:replies"


def webchat_reply(message_key: str) -> str:
    return f"patchbay:webchat:reply:{message_key}"


# A reply being written: a worker announces its text so far here, for the gateway's streaming endpoint.
WEBCHAT_STREAM_CHANNEL = "patchbay:webchat:stream"


def webchat_stream(message_key: str) -> str:
    """The latest text so far of a reply being written (a short TTL): a page that connects late starts from it."""
    return f"patchbay:webchat:stream:{message_key}"


def webchat_user_replies(user_key: str) -> str:
    """A set of the reply keys stored for one user: forgetting the user deletes them without a SCAN."""
    return f"patchbay:webchat:replies-of:{user_key}"


def webchat_rating(message_key: str) -> str:
    """The rating a web chat reply got (+1/-1): a repeated identical rating is not counted twice."""
    return f"patchbay:webchat:rating:{message_key}"


def webchat_upload(user_key: str, upload_id: str) -> str:
    """An image a web chat user uploaded, until a worker reads it (with a TTL): keyed by its owner, so
    an upload id is useless to anyone else."""
    return f"patchbay:webchat:upload:{user_key}:{upload_id}"


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


# How long a finished message's record is kept: a platform resend within that time is recognised.
DONE_TTL_S = 7 * 24 * 3600

# The ledger (gateway/shared/ledger.py): one record per admitted message, and the indexes over them.
MESSAGE_PREFIX = "patchbay:msg:"  # HASH per message: envelope, seq, state, dispatch number, attempts
CLAIM_PREFIX = "patchbay:claim:"  # STRING per message being handled: the holder's token, with a lease TTL
LEDGER_OPEN = "patchbay:ledger:open"  # ZSET of unfinished messages, scored by when the reaper looks next
DISPATCHED = "patchbay:ledger:dispatched"  # counter: the number of the latest task put on the queue
STARTED = "patchbay:ledger:started"  # the highest dispatch number a worker has started


def message_record(message_key: str) -> str:
    return MESSAGE_PREFIX + message_key


def claim(message_key: str) -> str:
    return CLAIM_PREFIX + message_key


def conversation_seq(conversation_key: str) -> str:
    """Counter: the conversation's last sequence number, given at admission."""
    return f"patchbay:conv:{conversation_key}:seq"


def conversation_open(conversation_key: str) -> str:
    """ZSET of the conversation's unfinished messages, scored by sequence number: the lowest goes first."""
    return f"patchbay:conv:{conversation_key}:open"
