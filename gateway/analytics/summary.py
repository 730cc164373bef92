"""The summary an operator reads: traffic, engagement, latency, satisfaction, cost, patches, tools, rollouts.

Everything is computed from the events table for ``since <= ts < until``. Rows are loaded once
per call (only the columns needed) and aggregated with numpy; ``timeseries`` buckets the same
data for the dashboard's charts.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.analytics.schema import events, reply_ids

__all__ = ["rollout_comparison", "summary", "timeseries", "two_proportion_z_test"]

BOOTSTRAP_RESAMPLES = 1000


@dataclass(slots=True)
class _Reply:
    key: str | None
    ts: float
    platform: str | None
    ingress: float | None
    enqueue: float | None
    worker_start: float | None
    llm_start: float | None
    llm_done: float | None
    egress: float | None
    provider: str | None
    model: str | None
    prompt_tokens: int
    completion_tokens: int
    cost: float
    cache_hit: bool
    patches: list[dict[str, Any]]
    variants: dict[str, bool]
    voice: bool
    degraded: str | None
    error: str | None
    reactions: list[int] = field(default_factory=list)
    tools: dict[str, Any] | None = None  # the reply event's ``tools`` record (kept in ``extra``)

    @property
    def response_ms(self) -> float | None:
        return _span(self.ingress, self.egress)


def _span(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else (end - start) * 1000


def _within(column: Any, since: float | None, until: float | None) -> Any:
    conditions = []
    if since is not None:
        conditions.append(column >= since)
    if until is not None:
        conditions.append(column < until)
    return and_(*conditions) if conditions else True


async def _load(
    engine: AsyncEngine, since: float | None, until: float | None
) -> tuple[list[Any], list[_Reply], list[Any]]:
    message = events.alias("m")
    async with engine.connect() as conn:
        messages = (
            await conn.execute(
                select(events.c.ts, events.c.platform, events.c.user_id, events.c.decision).where(
                    events.c.kind == "message", _within(events.c.ts, since, until)
                )
            )
        ).all()
        reply_rows = (
            await conn.execute(
                select(
                    events.c.key,
                    events.c.ts,
                    events.c.platform,
                    message.c.ts_ingress,
                    message.c.ts_enqueue,
                    events.c.ts_worker_start,
                    events.c.ts_llm_start,
                    events.c.ts_llm_done,
                    events.c.ts_egress,
                    events.c.llm_provider,
                    events.c.llm_model,
                    events.c.prompt_tokens,
                    events.c.completion_tokens,
                    events.c.cost_usd,
                    events.c.cache_hit,
                    events.c.patches,
                    events.c.variants,
                    events.c.voice,
                    events.c.degraded,
                    events.c.error,
                    events.c.extra,
                )
                .select_from(
                    events.outerjoin(
                        message,
                        and_(
                            message.c.key == events.c.key, message.c.kind == "message", message.c.decision == "queued"
                        ),
                    )
                )
                .where(events.c.kind == "reply", _within(events.c.ts, since, until))
            )
        ).all()
        reactions = (
            await conn.execute(
                select(func.coalesce(events.c.key, reply_ids.c.key), events.c.value, events.c.ts)
                .select_from(events.outerjoin(reply_ids, reply_ids.c.reply_id == events.c.reply_id))
                .where(events.c.kind == "reaction", _within(events.c.ts, since, until))
            )
        ).all()
    replies = [
        _Reply(
            key=row[0],
            ts=row[1],
            platform=row[2],
            ingress=row[3],
            enqueue=row[4],
            worker_start=row[5],
            llm_start=row[6],
            llm_done=row[7],
            egress=row[8],
            provider=row[9],
            model=row[10],
            prompt_tokens=int(row[11] or 0),
            completion_tokens=int(row[12] or 0),
            cost=float(row[13] or 0.0),
            cache_hit=bool(row[14]),
            patches=json.loads(row[15]) if row[15] else [],
            variants=json.loads(row[16]) if row[16] else {},
            voice=bool(row[17]),
            degraded=row[18],
            error=row[19],
            tools=_tools_record(row[20]),
        )
        for row in reply_rows
    ]
    by_key = {reply.key: reply for reply in replies if reply.key}
    for key, value, _ in reactions:
        if key in by_key and value is not None:
            by_key[key].reactions.append(int(value))
    return list(messages), replies, list(reactions)


def _percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "p50": None, "p95": None, "p99": None}
    p50, p95, p99 = np.percentile(np.asarray(values, dtype=float), [50, 95, 99])
    return {"count": len(values), "p50": round(float(p50), 2), "p95": round(float(p95), 2), "p99": round(float(p99), 2)}


def _rate(positive: int, total: int) -> float | None:
    return None if total == 0 else round(positive / total, 4)


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


async def _first_seen(engine: AsyncEngine, users: set[str]) -> dict[str, float]:
    """When each user first wrote, over all time: "returning" means seen on an earlier day, ever."""
    if not users:
        return {}
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(events.c.user_id, func.min(events.c.ts))
            .where(events.c.kind == "message", events.c.user_id.is_not(None))
            .group_by(events.c.user_id)
        )
        return {user: float(first) for user, first in rows if user in users}


def _engagement(messages: list[Any], first_seen: dict[str, float]) -> dict[str, Any]:
    users = {row.user_id for row in messages if row.user_id}
    per_day: dict[str, set[str]] = defaultdict(set)
    for row in messages:
        if row.user_id:
            per_day[_day(row.ts)].add(row.user_id)
    days = []
    for day in sorted(per_day):
        active = per_day[day]
        returning = sum(1 for user in active if _day(first_seen.get(user, 0.0)) < day)
        days.append(
            {
                "day": day,
                "active_users": len(active),
                "returning_users": returning,
                "new_users": len(active) - returning,
            }
        )
    return {
        "active_users": len(users),
        "messages_per_user": round(len(messages) / len(users), 2) if users else 0.0,
        "by_day": days,
    }


def _latency(replies: list[_Reply]) -> tuple[dict[str, Any], dict[str, Any]]:
    stages: dict[str, list[float]] = defaultdict(list)
    totals = []
    for reply in replies:
        if (total := reply.response_ms) is not None:
            totals.append(total)
        spans = {
            "admission": _span(reply.ingress, reply.enqueue),
            "queue_wait": _span(reply.enqueue, reply.worker_start),
            "worker": _span(reply.worker_start, reply.llm_start if reply.llm_start else None),
            "llm": _span(reply.llm_start, reply.llm_done),
            "worker_and_llm": _span(reply.worker_start, reply.llm_done),
            "egress": _span(reply.llm_done, reply.egress),
        }
        for stage, value in spans.items():
            if value is not None:
                stages[stage].append(value)
    return _percentiles(totals), {stage: _percentiles(values) for stage, values in stages.items()}


def _patches(replies: list[_Reply]) -> dict[str, Any]:
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    for reply in replies:
        for entry in reply.patches:
            name = str(entry.get("patch"))
            outcomes[name][str(entry.get("outcome"))] += 1
            if entry.get("outcome") == "fallback":
                reasons[name][str(entry.get("reason") or "unknown")] += 1
    report = {}
    for name, counts in sorted(outcomes.items()):
        active = counts["applied"] + counts["fallback"]
        report[name] = {
            "calls": sum(counts.values()),
            "applied": counts["applied"],
            "fallbacks": counts["fallback"],
            "skipped": counts["skipped"],
            "fallback_rate": _rate(counts["fallback"], active),
            "fallback_reasons": dict(reasons[name].most_common(5)),
        }
    return report


def _tools_record(extra: str | None) -> dict[str, Any] | None:
    if not extra:
        return None
    try:
        record = json.loads(extra).get("tools")
    except (ValueError, AttributeError):
        return None
    return record if isinstance(record, dict) else None


def _tools(replies: list[_Reply]) -> dict[str, Any]:
    """Per tool: calls, failures (any outcome but ok) and latency; servers that were unavailable; limits hit."""
    durations: dict[str, list[float]] = defaultdict(list)
    failures: Counter[str] = Counter()
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    servers: dict[str, str] = {}
    unavailable: Counter[str] = Counter()
    stopped: Counter[str] = Counter()
    with_tools = 0
    for reply in replies:
        record = reply.tools
        if not record:
            continue
        with_tools += bool(record.get("calls"))
        for call in record.get("calls") or []:
            name = str(call.get("tool"))
            durations[name].append(float(call.get("duration_ms") or 0.0))
            outcomes[name][str(call.get("outcome"))] += 1
            failures[name] += call.get("outcome") != "ok"
            servers[name] = str(call.get("server") or "")
        for server in record.get("unavailable") or {}:
            unavailable[str(server)] += 1
        if record.get("stopped"):
            stopped[str(record["stopped"])] += 1
    per_tool = {
        name: {
            "server": servers[name],
            "calls": len(values),
            "failures": failures[name],
            "failure_rate": _rate(failures[name], len(values)),
            "outcomes": dict(outcomes[name]),
            "latency_ms": _percentiles(values),
        }
        for name, values in sorted(durations.items())
    }
    return {
        "replies_with_calls": with_tools,
        "by_tool": per_tool,
        "unavailable": dict(sorted(unavailable.items())),
        "stopped_by_limit": dict(sorted(stopped.items())),
    }


def _provider_entry() -> dict[str, Any]:
    return {"replies": 0, "cache_hits": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "models": {}}


def _providers(replies: list[_Reply]) -> dict[str, Any]:
    report: dict[str, dict[str, Any]] = {}
    for reply in replies:
        name = reply.provider or "none"
        entry = report.setdefault(
            name,
            {"replies": 0, "cache_hits": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "models": {}},
        )
        entry["replies"] += 1
        entry["cache_hits"] += reply.cache_hit
        entry["prompt_tokens"] += reply.prompt_tokens
        entry["completion_tokens"] += reply.completion_tokens
        entry["cost_usd"] = round(entry["cost_usd"] + reply.cost, 6)
        if reply.model:
            entry["models"][reply.model] = entry["models"].get(reply.model, 0) + 1
    return report


def two_proportion_z_test(hits_a: int, n_a: int, hits_b: int, n_b: int) -> dict[str, float | None]:
    """Difference p_a - p_b, its 95% Wald interval, z (pooled standard error) and the two-sided p-value."""
    if n_a == 0 or n_b == 0:
        return {"difference": None, "ci95_low": None, "ci95_high": None, "z": None, "p_value": None}
    p_a, p_b = hits_a / n_a, hits_b / n_b
    pooled = (hits_a + hits_b) / (n_a + n_b)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    z = (p_a - p_b) / pooled_se if pooled_se > 0 else 0.0
    return {
        "difference": round(p_a - p_b, 4),
        "ci95_low": round(p_a - p_b - 1.96 * se, 4),
        "ci95_high": round(p_a - p_b + 1.96 * se, 4),
        "z": round(z, 3),
        "p_value": round(math.erfc(abs(z) / math.sqrt(2)), 4),
    }


def _bootstrap_median_difference(a: list[float], b: list[float]) -> dict[str, float | None]:
    """Median(a) - median(b) with a 95% percentile-bootstrap interval (seeded: the same data, the same answer)."""
    if not a or not b:
        return {"difference_ms": None, "ci95_low": None, "ci95_high": None}
    rng = np.random.default_rng(0)
    left, right = np.asarray(a), np.asarray(b)
    resampled = np.median(rng.choice(left, (BOOTSTRAP_RESAMPLES, left.size)), axis=1) - np.median(
        rng.choice(right, (BOOTSTRAP_RESAMPLES, right.size)), axis=1
    )
    low, high = np.percentile(resampled, [2.5, 97.5])
    return {
        "difference_ms": round(float(np.median(left) - np.median(right)), 2),
        "ci95_low": round(float(low), 2),
        "ci95_high": round(float(high), 2),
    }


@dataclass(slots=True)
class _Group:
    replies: int
    votes: list[int]
    latencies: list[float]

    @classmethod
    def of(cls, members: list[_Reply]) -> _Group:
        votes = [value for reply in members for value in reply.reactions]
        latencies = [ms for reply in members if (ms := reply.response_ms) is not None]
        return cls(len(members), votes, latencies)

    @property
    def positive(self) -> int:
        return sum(1 for vote in self.votes if vote > 0)

    def figures(self) -> dict[str, Any]:
        return {
            "replies": self.replies,
            "reactions": len(self.votes),
            "positive": self.positive,
            "satisfaction": _rate(self.positive, len(self.votes)),
            "latency_p50_ms": _percentiles(self.latencies)["p50"],
        }


def rollout_comparison(replies: list[_Reply]) -> dict[str, Any]:
    """For each patch seen both in and out of its rollout: satisfaction and latency of each group."""
    patches = {name for reply in replies for name in reply.variants}
    report = {}
    for name in sorted(patches):
        groups: dict[bool, list[_Reply]] = {True: [], False: []}
        for reply in replies:
            if name in reply.variants:
                groups[bool(reply.variants[name])].append(reply)
        if not groups[True] or not groups[False]:
            continue
        rollout, control = _Group.of(groups[True]), _Group.of(groups[False])
        report[name] = {
            "rollout": rollout.figures(),
            "control": control.figures(),
            "satisfaction": {
                "method": "two-proportion z-test (rollout - control), 95% Wald interval",
                **two_proportion_z_test(rollout.positive, len(rollout.votes), control.positive, len(control.votes)),
            },
            "latency": {
                "method": "median difference (rollout - control), 95% percentile bootstrap, "
                f"{BOOTSTRAP_RESAMPLES} resamples",
                **_bootstrap_median_difference(rollout.latencies, control.latencies),
            },
        }
    return report


async def summary(engine: AsyncEngine, since: float | None = None, until: float | None = None) -> dict[str, Any]:
    messages, replies, reactions = await _load(engine, since, until)
    first_seen = await _first_seen(engine, {row.user_id for row in messages if row.user_id})
    response, breakdown = _latency(replies)
    votes = [int(value) for _, value, _ in reactions if value is not None]
    positive = sum(1 for v in votes if v > 0)
    cost = sum(reply.cost for reply in replies)
    return {
        "range": {"since": since, "until": until},
        "messages": {
            "total": len(messages),
            "by_platform": dict(sorted(Counter(row.platform for row in messages).items())),
            "by_decision": dict(sorted(Counter(row.decision for row in messages).items())),
        },
        "engagement": _engagement(messages, first_seen),
        "replies": {
            "total": len(replies),
            "voice": sum(reply.voice for reply in replies),
            "degraded": sum(1 for reply in replies if reply.degraded),
            "errors": sum(1 for reply in replies if reply.error),
            "cache_hit_rate": _rate(sum(reply.cache_hit for reply in replies), len(replies)),
        },
        "response_time_ms": response,
        "latency_breakdown_ms": breakdown,
        "satisfaction": {
            "reactions": len(votes),
            "positive": positive,
            "negative": len(votes) - positive,
            "rate": _rate(positive, len(votes)),
        },
        "cost": {
            "usd": round(cost, 6),
            "per_reply_usd": round(cost / len(replies), 6) if replies else 0.0,
            "prompt_tokens": sum(reply.prompt_tokens for reply in replies),
            "completion_tokens": sum(reply.completion_tokens for reply in replies),
        },
        "patches": _patches(replies),
        "tools": _tools(replies),
        "providers": _providers(replies),
        "rollouts": rollout_comparison(replies),
    }


async def timeseries(
    engine: AsyncEngine, since: float | None = None, until: float | None = None, buckets: int = 24
) -> dict[str, Any]:
    """The dashboard's charts: per time bucket, messages per platform, latency percentiles, satisfaction, cost."""
    messages, replies, reactions = await _load(engine, since, until)
    stamps = [row.ts for row in messages] + [reply.ts for reply in replies] + [row[2] for row in reactions]
    if not stamps:
        return {
            "start": since,
            "step_s": 0,
            "buckets": [],
            "platforms": {},
            "latency_ms": {},
            "satisfaction": [],
            "cost_usd": [],
        }
    start = since if since is not None else min(stamps)
    end = until if until is not None else max(stamps) + 1e-6
    step = max((end - start) / buckets, 1.0)
    count = max(1, math.ceil((end - start) / step))

    def slot(ts: float) -> int:
        return min(count - 1, max(0, int((ts - start) / step)))

    platforms: dict[str, list[int]] = defaultdict(lambda: [0] * count)
    for row in messages:
        platforms[str(row.platform)][slot(row.ts)] += 1
    latencies: list[list[float]] = [[] for _ in range(count)]
    cost = [0.0] * count
    for reply in replies:
        if (ms := reply.response_ms) is not None:
            latencies[slot(reply.ts)].append(ms)
        cost[slot(reply.ts)] += reply.cost
    up, total = [0] * count, [0] * count
    for _, value, ts in reactions:
        if value is not None:
            total[slot(ts)] += 1
            up[slot(ts)] += int(value) > 0
    per_bucket = [_percentiles(values) for values in latencies]
    return {
        "start": start,
        "step_s": step,
        "buckets": [start + i * step for i in range(count)],
        "platforms": dict(sorted(platforms.items())),
        "latency_ms": {p: [b[p] for b in per_bucket] for p in ("p50", "p95", "p99")},
        "satisfaction": [_rate(u, t) for u, t in zip(up, total, strict=True)],
        "cost_usd": [round(c, 6) for c in cost],
    }
