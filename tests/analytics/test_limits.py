"""Rate limits, block list, flood and spam detection and ingress limits, against a real Redis."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from click.testing import CliRunner

from gateway.limits import Guard, LimitSettings, RateLimiter, normalised_text_hash, parse_limits
from gateway.limits.cli import blocks_group
from gateway.shared.envelope import Attachment, Envelope

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_800_000_000.0


@pytest.fixture
async def aredis(redis_url: str, redis_client: redis.Redis) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


def envelope(text: str = "hello there", user: str = "u1", conversation: str = "c1", **extra: object) -> Envelope:
    return Envelope(
        platform="discord",
        bot_id="bot",
        conversation_id=conversation,
        message_id=f"m-{text[:8]}-{conversation}",
        author_id=user,
        text=text,
        **extra,
    )


def only(**limits: str) -> LimitSettings:
    values = {"user": "", "conversation": "", "platform": "", "global_": "", **limits}
    return LimitSettings(**values)


def test_limit_notation_is_parsed_per_scope() -> None:
    specs = parse_limits("user", "5/minute;100/hour")
    assert [(s.amount, s.period_s) for s in specs] == [(5, 60), (100, 3600)]
    assert str(specs[0]) == "user 5 per minute"
    assert parse_limits("global", "") == []
    with pytest.raises(ValueError, match="bad user limit"):
        parse_limits("user", "five a minute")


def test_limits_hold_across_two_processes(redis_url: str, redis_client: redis.Redis) -> None:
    command = [sys.executable, "-m", "tests.analytics._limit_worker", redis_url, "40", str(NOW)]
    workers = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [worker.communicate(timeout=60)[0].split() for worker in workers]
    assert all(worker.returncode == 0 for worker in workers)
    allowed = sum(int(out[0]) for out in outputs)
    notices = sum(int(out[1]) for out in outputs)
    assert allowed == 50  # 80 attempts against "50/hour": exactly the limit got through
    assert notices == 1  # 30 refusals, one notice


async def test_refusal_names_the_limit_and_the_notice_comes_once_per_window(aredis: aioredis.Redis) -> None:
    limiter = RateLimiter(aredis, only(user="2/minute", conversation="10/minute"))
    first = [await limiter.check("slack", "T1", "C1", "U1", now=NOW) for _ in range(2)]
    assert all(d.allowed for d in first)
    refused = [await limiter.check("slack", "T1", "C1", "U1", now=NOW + 1) for _ in range(3)]
    assert [d.allowed for d in refused] == [False, False, False]
    assert refused[0].limit == "user 2 per minute"
    assert refused[0].retry_after_s == pytest.approx(29.0)  # GCRA: one slot back every 30 s
    assert [d.notify for d in refused] == [True, False, False]
    # Another user is unaffected, and the refusals spent nothing of the conversation's budget.
    assert (await limiter.check("slack", "T1", "C1", "U2", now=NOW + 1)).allowed
    # After the notice window (the limit's period) a new refusal may notify again.
    later = await limiter.check("slack", "T1", "C1", "U1", now=NOW + 61)
    assert later.allowed
    await limiter.check("slack", "T1", "C1", "U1", now=NOW + 61)
    again = await limiter.check("slack", "T1", "C1", "U1", now=NOW + 61)
    assert not again.allowed and again.notify


async def test_global_and_platform_limits_cover_every_user(aredis: aioredis.Redis) -> None:
    limiter = RateLimiter(aredis, only(platform="3/minute", global_="5/minute"))
    telegram = [await limiter.check("telegram", "b", f"c{i}", f"u{i}", now=NOW) for i in range(4)]
    assert [d.allowed for d in telegram] == [True, True, True, False]
    assert telegram[3].limit == "platform 3 per minute"
    slack = [await limiter.check("slack", "b", f"c{i}", f"u{i}", now=NOW) for i in range(3)]
    assert [d.allowed for d in slack] == [True, True, False]
    assert slack[2].limit == "global 5 per minute"


async def test_batch_matches_single_decisions(aredis: aioredis.Redis) -> None:
    from gateway.limits import LimitRequest

    limiter = RateLimiter(aredis, only(user="3/minute"))
    decisions = await limiter.check_many([LimitRequest("discord", "b", "c", "u")] * 5, now=NOW)
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.notify for d in decisions] == [False, False, False, True, False]


async def test_block_list_blocks_and_unblocks(aredis: aioredis.Redis) -> None:
    guard = Guard(aredis, only())
    await guard.blocks.block_user("discord:u1", "abusive")
    await guard.blocks.block_conversation("discord:c9")
    assert (await guard.check(envelope(), now=NOW)).reason == "user_blocked: abusive"
    assert (await guard.check(envelope(user="u2", conversation="c9"), now=NOW)).action == "blocked"
    assert (await guard.check(envelope(user="u2"), now=NOW)).action == "allow"
    # Only within its platform: the same id on Slack is someone else.
    slack = Envelope(platform="slack", bot_id="T", conversation_id="C", message_id="1", author_id="u1", text="hi")
    assert (await guard.check(slack, now=NOW)).action == "allow"
    listed = await guard.blocks.list_blocks()
    assert [(e.kind, e.id, e.reason) for e in listed] == [
        ("conversation", "discord:c9", ""),
        ("user", "discord:u1", "abusive"),
    ]
    assert await guard.blocks.unblock_user("discord:u1")
    assert not await guard.blocks.unblock_user("discord:u1")
    assert (await guard.check(envelope(), now=NOW)).action == "allow"
    with pytest.raises(ValueError, match="not a qualified user id"):
        await guard.blocks.block_user("u1")


def test_blocks_cli_round_trip(redis_url: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    runner = CliRunner()
    added = runner.invoke(blocks_group, ["add", "--user", "telegram:42", "--reason", "spam bot"])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(blocks_group, ["list"])
    assert "telegram:42" in listed.output and "spam bot" in listed.output
    assert redis_client.hexists("pb:blocks:user", "telegram:42")
    assert runner.invoke(blocks_group, ["remove", "--user", "telegram:42"]).exit_code == 0
    assert runner.invoke(blocks_group, ["remove", "--user", "telegram:42"]).exit_code != 0
    assert runner.invoke(blocks_group, ["add", "--user", "a:1", "--conversation", "a:2"]).exit_code != 0


async def test_flood_mutes_with_a_reason_and_one_notice(aredis: aioredis.Redis) -> None:
    guard = Guard(aredis, only(user="100/minute").model_copy(update={"flood_messages": 5, "mute_s": 300}))
    decisions = [await guard.check(envelope(text=f"message {i}"), now=NOW) for i in range(8)]
    assert [d.action for d in decisions[:5]] == ["allow"] * 5
    assert decisions[5].action == "blocked" and decisions[5].reason.startswith("muted (flood")
    assert decisions[5].notice is not None and "5 minutes" in decisions[5].notice
    assert decisions[6].action == "blocked" and decisions[6].notice is None
    assert 0 < decisions[7].retry_after_s <= 300
    assert (await guard.check(envelope(user="someone-else"), now=NOW)).action == "allow"


async def test_the_same_text_across_conversations_is_spam(aredis: aioredis.Redis) -> None:
    guard = Guard(aredis, only().model_copy(update={"spam_conversations": 3}))
    text = "Buy cheap followers at example.com now!"
    variants = [text, text.upper(), "buy   cheap followers at example com NOW"]
    decisions = [await guard.check(envelope(text=v, conversation=f"c{i}"), now=NOW) for i, v in enumerate(variants)]
    assert [d.action for d in decisions] == ["allow", "allow", "blocked"]
    assert decisions[2].reason.startswith("spam")
    # A different user saying the same thing, and short common texts, are not spam.
    assert (await guard.check(envelope(text=text, user="u2", conversation="c7"), now=NOW)).action == "allow"
    assert normalised_text_hash("thanks!", 12) is None
    # The copies expire with the window.
    later = await guard.check(envelope(text=text, conversation="c8"), now=NOW + 601)
    assert later.action == "allow"


async def test_rate_limited_message_carries_a_notice_once(aredis: aioredis.Redis) -> None:
    guard = Guard(aredis, only(user="1/minute"))
    assert (await guard.check(envelope(text="one"), now=NOW)).action == "allow"
    second = await guard.check(envelope(text="two"), now=NOW)
    third = await guard.check(envelope(text="three"), now=NOW)
    assert second.action == third.action == "rate_limited"
    assert second.limit == "user 1 per minute" and second.notice and "60 s" in second.notice
    assert third.notice is None


async def test_ingress_limits_reject_with_a_clear_error(aredis: aioredis.Redis) -> None:
    guard = Guard(aredis, only().model_copy(update={"max_message_chars": 10, "max_attachments": 1}))
    long = await guard.check(envelope(text="x" * 11))
    assert (long.action, long.reason) == ("rejected", "too_long")
    assert long.notice == "Your message is 11 characters long; the limit is 10."
    files = [Attachment(url=f"http://127.0.0.1/{i}") for i in range(2)]
    many = await guard.check(envelope(text="ok", attachments=files))
    assert (many.action, many.reason) == ("rejected", "too_many_attachments")
    assert many.notice == "Your message has 2 attachments; at most 1 are accepted."
    assert (await guard.check(envelope(text="x" * 10, attachments=files[:1]))).action == "allow"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHBAY_LIMIT_GLOBAL", "7/second")
    monkeypatch.setenv("PATCHBAY_MAX_ATTACHMENTS", "9")
    settings = LimitSettings()
    assert (settings.global_, settings.max_attachments) == ("7/second", 9)
