"""Webhook platforms are told to redeliver what admission could not store; socket transports ask to spool.

The real slack-bolt and python-telegram-bot adapters behind a real HTTP server, against the Slack and
Telegram simulators, with an admission that is "unavailable" for its first calls (Redis away).
"""

from __future__ import annotations

import asyncio

from adapters.base import AdapterState, Admission, AdmitResult
from adapters.sim.slack import SlackSimulator
from adapters.sim.telegram import TelegramSimulator
from adapters.slack import SlackSettings
from adapters.slack import build_router as slack_router
from adapters.slack.adapter import SlackAdapter
from adapters.telegram import TelegramSettings
from adapters.telegram import build_router as telegram_router
from adapters.telegram.adapter import TelegramAdapter
from gateway.shared.envelope import Envelope
from tests.adapters.helpers import RecordingAdmit, eventually, free_port, serve_routers

SECRET = "test-signing-secret"


class FlakyAdmit(RecordingAdmit):
    """``UNAVAILABLE`` for the first ``outage`` calls, then QUEUED."""

    def __init__(self, outage: int) -> None:
        super().__init__()
        self.outage = outage

    async def __call__(self, envelope: Envelope, *, spool: bool = False) -> AdmitResult:
        await super().__call__(envelope, spool=spool)
        if len(self.envelopes) <= self.outage:
            return AdmitResult(Admission.UNAVAILABLE, "the message queue is unavailable; please retry")
        return AdmitResult(Admission.QUEUED)


async def test_slack_redelivers_an_event_admission_could_not_store() -> None:
    port = free_port()
    async with SlackSimulator(signing_secret=SECRET, events_url=f"http://127.0.0.1:{port}/slack/events") as sim:
        adapter = SlackAdapter(SlackSettings(bot_token=sim.token, signing_secret=SECRET, api_base_url=sim.base_url))
        admit = FlakyAdmit(outage=2)
        router = slack_router(adapter)
        assert router is not None
        async with serve_routers(router, port=port):
            task = asyncio.create_task(adapter.start(admit))
            try:
                await eventually(lambda: adapter.health().state == AdapterState.CONNECTED, what="slack connected")
                await sim.user_message("C1", "are you there?", mention=True)
                await eventually(lambda: len(admit.envelopes) == 3, what="Slack to retry twice")
            finally:
                await adapter.stop()
                await task
    statuses = [delivery["status"] for delivery in sim.deliveries]
    assert statuses[:2] and all(status >= 500 for status in statuses[:2]), statuses
    assert statuses[2] == 200 and len(statuses) == 3, "acknowledged once stored, not before"
    assert admit.spooled == [False, False, False], "the Events API redelivers: it must not spool"


async def test_the_telegram_webhook_answers_503_until_the_update_is_stored() -> None:
    async with TelegramSimulator() as sim:
        port = free_port()
        settings = TelegramSettings(
            bot_token=sim.token,
            api_base_url=sim.base_url,
            webhook_url=f"http://127.0.0.1:{port}/telegram/webhook",
            webhook_secret="s3cret",
        )
        adapter = TelegramAdapter(settings)
        admit = FlakyAdmit(outage=1)
        router = telegram_router(adapter)
        assert router is not None
        async with serve_routers(router, port=port):
            task = asyncio.create_task(adapter.start(admit))
            try:
                await eventually(lambda: adapter.health().state == AdapterState.CONNECTED, what="webhook set")
                await sim.user_message(45, "through the webhook")
                await eventually(lambda: len(sim.webhook_deliveries) >= 1, what="a first delivery")
            finally:
                await adapter.stop()
                await task
    assert sim.webhook_deliveries[0] == 503, sim.webhook_deliveries
    assert admit.spooled == [False], "the webhook redelivers: it must not spool"


async def test_polling_asks_admission_to_spool() -> None:
    async with TelegramSimulator() as sim:
        adapter = TelegramAdapter(TelegramSettings(bot_token=sim.token, api_base_url=sim.base_url))
        admit = RecordingAdmit()
        task = asyncio.create_task(adapter.start(admit))
        try:
            await eventually(lambda: adapter.health().state == AdapterState.CONNECTED, what="polling")
            await sim.user_message(46, "polled")
            await eventually(lambda: len(admit.envelopes) == 1, what="the polled update")
        finally:
            await adapter.stop()
            await task
    assert admit.spooled == [True]
