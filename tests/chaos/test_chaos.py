"""The chaos suite, short form: a real cluster must lose nothing, answer nothing twice and keep order
while workers are SIGKILLed (one right after Redis hands it a message), Redis is restarted with SIGTERM
and with SIGKILL, and Telegram and Slack deliver messages again.

About 120 messages over 30 s; the full-size run is ``bench/chaos.py``. A loss, a duplicate, a
misorder, a stray reply or a process left running fails this test: it is never retried, and
``PATCHBAY_CHAOS_SEED`` replays another schedule when one needs looking into.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.chaos.plan import ChaosConfig
from tests.chaos.run import run_chaos

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

CI_SCENARIO = ChaosConfig(
    messages=120,
    duration_s=30.0,
    telegram_chats=9,
    slack_chats=2,
    webchat_chats=1,
    workers=3,
    kills=3,
    handout_kills=1,
    redis_sigterm=1,
    redis_sigkill=1,
    redeliveries=4,
    visibility_timeout_s=10,
    settle_s=60.0,
    startup_s=120.0,
    seed=int(os.environ.get("PATCHBAY_CHAOS_SEED", "1")),
)


@pytest.mark.timeout(300)
def test_nothing_lost_nothing_twice_in_order_under_kills_restarts_and_redeliveries(tmp_path: Path) -> None:
    result = run_chaos(CI_SCENARIO, tmp_path)
    report = result.report()
    print(report)
    score = result.score
    assert score.sent == CI_SCENARIO.messages, report
    assert not result.leftovers, report
    assert (len(score.lost), len(score.duplicated), len(score.out_of_order), len(score.stray)) == (0, 0, 0, 0), report
    # The faults did happen: a run in which nothing was broken proves nothing.
    assert [line for line in result.faults if "worker_kill" in line or "handout_kill" in line], report
    assert sum(1 for line in result.faults if "redis_start" in line and "FAILED" not in line) >= 2, report
