"""The chaos suite's own parts, fast: the schedule, the scoring, the Telegram simulator's redelivery.

An instrument that cannot see a loss, a duplicate or a misorder would pass a broken cluster; these
tests feed it each of those and check that it counts them.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest
from fastapi import APIRouter, Response

from adapters.sim.slack import SlackSimulator
from adapters.sim.telegram import TelegramSimulator
from adapters.telegram import TelegramSettings
from adapters.telegram.adapter import TelegramAdapter
from tests.adapters.helpers import RecordingAdmit, eventually, serve_routers
from tests.chaos.diagnose import diagnose
from tests.chaos.plan import ChaosConfig, FaultKind, Platform, make_plan
from tests.chaos.score import ReplySeen, SentMessage, percentile, score

APOLOGY = "Sorry, try again."


def sent(conversation: str, index: int, at: float, accepted_at: float | None = None) -> SentMessage:
    tag = f"{conversation}.m{index:03d}"
    return SentMessage(conversation, index, "telegram", tag, sent_at=at, accepted_at=accepted_at or at)


def reply(conversation: str, index: int, at: float, text: str | None = None, source: str = "telegram") -> ReplySeen:
    return ReplySeen((conversation, index), at, text or f"sim reply: {conversation}.m{index:03d} hello", source)


# --------------------------------------------------------------------------- scoring


def test_a_clean_run_scores_clean() -> None:
    messages = [sent("a", 1, 0.0), sent("a", 2, 1.0), sent("b", 1, 0.5)]
    result = score(messages, [reply("a", 1, 0.4), reply("b", 1, 1.5), reply("a", 2, 1.2)], APOLOGY)
    assert result.ok and result.answered == 3
    assert result.latencies_s == pytest.approx([0.2, 0.4, 1.0])


def test_losses_duplicates_and_misorder_are_each_counted() -> None:
    messages = [sent("a", i, float(i)) for i in range(1, 5)] + [sent("b", 1, 0.0)]
    replies = [
        reply("a", 1, 1.1),
        reply("a", 3, 3.1),
        reply("a", 2, 3.5),  # after its successor: out of order
        reply("b", 1, 0.2),
        reply("b", 1, 9.0),  # a second reply: duplicated
    ]
    result = score(messages, replies, APOLOGY)
    assert result.lost == [("a", 4)]
    assert result.duplicated == {("b", 1): 2}
    assert result.out_of_order == [("a", 2)]
    assert result.misordered_conversations == {"a": [1, 3, 2]}
    assert not result.ok


def test_order_follows_the_platforms_hand_over_not_the_first_attempt() -> None:
    # m1's first attempt was refused and it was handed over after m2: answering m2 first is in order.
    messages = [sent("w", 1, 0.0, accepted_at=5.0), sent("w", 2, 1.0, accepted_at=1.0)]
    result = score(messages, [reply("w", 2, 1.5), reply("w", 1, 5.5)], APOLOGY)
    assert result.out_of_order == []


def test_a_reply_to_the_wrong_message_or_to_none_is_stray_and_the_message_still_lost() -> None:
    messages = [sent("a", 1, 0.0), sent("a", 2, 0.0)]
    replies = [
        reply("a", 1, 1.0, text="sim reply: a.m002 hello"),  # lands on m1, says m2's words
        ReplySeen(None, 1.0, "rate limited, slow down", "telegram"),
        reply("a", 2, 1.0),
    ]
    result = score(messages, replies, APOLOGY)
    assert len(result.stray) == 2 and result.lost == [("a", 1)] and not result.ok


def test_the_apology_is_an_answer_and_a_web_chat_client_answer_is_no_duplicate() -> None:
    messages = [sent("a", 1, 0.0), sent("w", 1, 0.0)]
    replies = [
        reply("a", 1, 1.0, text=APOLOGY),
        reply("w", 1, 2.0, source="webchat-egress"),
        reply("w", 1, 2.1, source="webchat-client"),
    ]
    result = score(messages, replies, APOLOGY)
    assert result.ok and result.apologies == 1 and result.answered == 2


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 1.0)) == (50.0, 95.0, 100.0)
    assert percentile([], 0.5) is None


# --------------------------------------------------------------------------- the schedule


def test_the_plan_is_a_function_of_the_config_and_holds_what_it_says() -> None:
    config = ChaosConfig()
    plan = make_plan(config)
    assert plan == make_plan(config) and plan != make_plan(config.with_seed(2))
    assert len(plan.messages) == config.messages
    assert len(plan.conversations) == 40
    kinds = [fault.kind for fault in plan.faults]
    assert kinds.count(FaultKind.WORKER_KILL) + kinds.count(FaultKind.HANDOUT_KILL) == config.kills
    assert kinds.count(FaultKind.HANDOUT_KILL) == config.handout_kills
    assert (kinds.count(FaultKind.REDIS_SIGTERM), kinds.count(FaultKind.REDIS_SIGKILL)) == (1, 1)
    slack_retries = sum(m.redelivered for m in plan.messages)
    assert kinds.count(FaultKind.TELEGRAM_REDELIVERY) + slack_retries == config.redeliveries and slack_retries > 0
    assert all(0 < f.at < config.duration_s for f in plan.faults)
    for conversation in plan.conversations:
        mine = plan.of(conversation)
        assert [m.index for m in mine] == list(range(1, len(mine) + 1))
        assert [m.at for m in mine] == sorted(m.at for m in mine)
        if conversation.platform is Platform.SLACK:
            assert all(b.at - a.at >= config.slack_gap_s - 1e-9 for a, b in itertools.pairwise(mine))


def test_impossible_configs_are_refused() -> None:
    with pytest.raises(ValueError, match="handout_kills"):
        ChaosConfig(kills=1, handout_kills=2)
    with pytest.raises(ValueError, match="conversation"):
        ChaosConfig(telegram_chats=0, slack_chats=0, webchat_chats=0)


# --------------------------------------------------------------------------- Telegram redelivery


async def test_the_telegram_simulator_serves_an_update_again_to_a_polling_bot() -> None:
    async with TelegramSimulator() as sim:
        admit = RecordingAdmit()
        adapter = TelegramAdapter(TelegramSettings(bot_token=sim.token, api_base_url=sim.base_url))
        task = asyncio.create_task(adapter.start(admit))
        try:
            first = await sim.user_message(42, "once", user_id=7)
            await eventually(lambda: len(admit.envelopes) == 1, what="the first delivery")
            await sim.user_message(42, "twice", user_id=7)
            await eventually(lambda: len(admit.envelopes) == 2, what="the next message")
            # The bot has confirmed both by now; Telegram serves the first one again all the same.
            await sim.redeliver(chat_id=42, message_id=int(first["message_id"]))
            await eventually(lambda: len(admit.envelopes) == 3, what="the redelivery")
            await sim.user_message(42, "after", user_id=7)
            await eventually(lambda: len(admit.envelopes) == 4, what="a message after the redelivery")
        finally:
            await adapter.stop()
            await task
        assert [e.text for e in admit.envelopes] == ["once", "twice", "once", "after"]
        assert admit.envelopes[2].message_id == admit.envelopes[0].message_id
        assert len(sim.redeliveries) == 1
        with pytest.raises(KeyError):
            await sim.redeliver(chat_id=42, message_id=999_999)


# --------------------------------------------------------------------------- reading the logs


def test_the_logs_say_where_each_lost_message_was_lost(tmp_path: Path) -> None:
    (tmp_path / "gateway.log").write_text(
        "INFO gateway.admission: queued key=telegram:1:42:100 seq=1\n"
        "INFO gateway.admission: queued key=telegram:1:42:101 seq=2\n"
        "ERROR telegram.ext.Application: No error handlers are registered, logging exception.\n"
    )
    (tmp_path / "worker0.log").write_text(
        "INFO workers.pipeline: skip key=telegram:1:42:101 claim=busy (exactly one reply)\n"
        "CRITICAL celery.worker: Unrecoverable error: AttributeError(\"'NoneType' object has no attribute 'hostname'\")\n"
    )
    lost = [
        SentMessage("te00", 1, "telegram", "te00.m001", 0.0, log_key=":42:100"),
        SentMessage("te00", 2, "telegram", "te00.m002", 0.0, log_key=":42:101"),
        SentMessage("te00", 3, "telegram", "te00.m003", 0.0, log_key=":42:10"),  # a prefix of the others' keys
    ]
    report = "\n".join(diagnose(tmp_path, lost))
    assert "1  queued; no worker ever logged it" in report
    assert "1  queued; a copy was skipped as busy; no reply ever" in report
    assert "1  never queued by the gateway" in report
    assert "Celery: unrecoverable error" in report and "default error handler" in report


async def test_the_slack_simulator_waits_its_retry_delay_after_a_refused_delivery() -> None:
    statuses = iter([503, 200])
    router = APIRouter()

    @router.post("/slack/events")
    async def events() -> Response:
        return Response(status_code=next(statuses))

    async with serve_routers(router) as base, SlackSimulator(events_url=f"{base}/slack/events") as sim:
        sim.retry_delays_s = (0.3,)
        await sim.user_message("D1", "hello", channel_type="im")
    first, retry = sim.deliveries
    assert (first["status"], retry["status"], retry["retry_num"]) == (503, 200, 1)
    assert retry["at"] - first["at"] >= 0.3
