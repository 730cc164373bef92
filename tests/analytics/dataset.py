"""A small known dataset, emitted through the real EventSink, with the figures it must summarise to."""

from __future__ import annotations

from typing import Any

from gateway.analytics import EventSink

DAY = 86400.0
T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC

# (message id, platform, user, decision, ingress offset s, response time s, in rollout, reaction, patch outcome)
MESSAGES: list[tuple[str, str, str, str, float, float | None, bool | None, int | None, str | None]] = [
    ("m1", "discord", "alice-raw-1001", "queued", 0, 1.0, True, +1, "applied"),
    ("m2", "discord", "bob-raw-2002", "queued", 60, 2.0, True, +1, "fallback"),
    ("m3", "telegram", "carol-raw-3003", "queued", 120, 3.0, False, -1, "skipped"),
    ("m4", "discord", "alice-raw-1001", "rate_limited", 130, None, None, None, None),
    ("m5", "slack", "dave-raw-4004", "queued", 180, 4.0, False, +1, "skipped"),
]
RAW_IDS = ["alice-raw-1001", "bob-raw-2002", "carol-raw-3003", "dave-raw-4004", "conv-raw-77"]


def key_of(message_id: str, platform: str) -> str:
    return f"{platform}:bot-1:conv-raw-77:{message_id}"


def events(base: float = T0) -> list[dict[str, Any]]:
    seeded: list[dict[str, Any]] = [
        # Alice wrote two days earlier too: on T0's day she is a returning user.
        _message("m0", "discord", "alice-raw-1001", "queued", base - 2 * DAY),
    ]
    for mid, platform, user, decision, offset, response_s, in_rollout, reaction, outcome in MESSAGES:
        ingress = base + offset
        seeded.append(_message(mid, platform, user, decision, ingress))
        if response_s is None:
            continue
        egress = ingress + response_s
        seeded.append(
            {
                "kind": "reply",
                "key": key_of(mid, platform),
                "platform": platform,
                "conversation_id": "conv-raw-77",
                "user_id": user,
                "reply_ids": [f"r-{mid}"],
                "ts_worker_start": ingress + 0.1,
                "ts_llm_done": egress - 0.05,
                "ts_egress": egress,
                "llm_provider": "local" if platform == "slack" else "openai",
                "llm_model": "smollm2" if platform == "slack" else "gpt-4o-mini",
                "prompt_tokens": 100,
                "completion_tokens": 20,
                "cost_usd": 0.001,
                "cache_hit": mid == "m3",
                "patches": [{"patch": "memory_enhancement", "method": "recall", "outcome": outcome, "reason": None}]
                if outcome != "fallback"
                else [{"patch": "memory_enhancement", "method": "recall", "outcome": "fallback", "reason": "timeout"}],
                "variants": {"memory_enhancement": in_rollout},
                "voice": mid == "m5",
                "degraded": None,
                "error": None,
            }
        )
        # Half the reactions name the rated message by key, half by the platform id of the reply.
        target = {"key": key_of(mid, platform)} if mid in ("m1", "m3") else {"reply_id": f"r-{mid}"}
        seeded.append(
            {"kind": "reaction", "platform": platform, "user_id": user, "value": reaction, "ts": egress + 5, **target}
        )
    return seeded


def _message(mid: str, platform: str, user: str, decision: str, ingress: float) -> dict[str, Any]:
    return {
        "kind": "message",
        "key": key_of(mid, platform),
        "platform": platform,
        "bot_id": "bot-1",
        "conversation_id": "conv-raw-77",
        "user_id": user,
        "decision": decision,
        "reason": "rate limit: user 6 per minute" if decision == "rate_limited" else "",
        "ts_ingress": ingress,
        "ts_enqueue": ingress + 0.02 if decision == "queued" else None,
        "text_chars": 42,
        "attachments": 0,
        "is_direct": platform == "telegram",
    }


async def seed(sink: EventSink, base: float = T0) -> list[dict[str, Any]]:
    seeded = events(base)
    for number, event in enumerate(seeded):
        event["event_id"] = f"evt-{number:04d}"
    for event in seeded:
        assert await sink.emit(event)
    return seeded
