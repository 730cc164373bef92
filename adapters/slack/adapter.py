"""The inbound half on Slack: a slack-bolt async app fed by the Events API route or Socket Mode."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.base import AdapterState, Admission, Admit, Health, Rate
from adapters.ordering import ChatOrder
from adapters.ratings import RatingDesk
from adapters.rejections import record_rejection
from adapters.slack.normalise import answerable, event_problem, to_envelope
from adapters.slack.reactions import to_rating
from adapters.slack.settings import SlackSettings
from adapters.supervisor import Supervisor

__all__ = ["AdmissionUnavailable", "SlackAdapter", "SlackTokenRefused"]

log = logging.getLogger(__name__)


class AdmissionUnavailable(Exception):
    """Admission could not store the event; raised so that bolt answers with a 5xx and Slack retries."""


class SlackTokenRefused(Exception):
    """auth.test answered invalid_auth / not_authed / token_revoked."""


_AUTH_ERRORS = {"invalid_auth", "not_authed", "token_revoked", "account_inactive"}
# Slack redelivers an event up to 3 times; a rating, unlike a message, has no gateway dedupe behind it.
_RECENT_REACTION_EVENTS = 4096


class SlackAdapter:
    platform = "slack"

    def __init__(self, settings: SlackSettings, admit: Admit | None = None) -> None:
        if not settings.bot_token:
            raise ValueError("SLACK_BOT_TOKEN is not set")
        if not settings.signing_secret and not settings.app_token:
            raise ValueError("Slack needs SLACK_SIGNING_SECRET (Events API) or SLACK_APP_TOKEN (Socket Mode)")
        self.settings = settings
        self._admit = admit
        self._ratings = RatingDesk("slack")
        self._recent_reaction_events: OrderedDict[str, None] = OrderedDict()
        self._supervisor = Supervisor("slack", auth_errors=(SlackTokenRefused,))
        self.client = AsyncWebClient(token=settings.bot_token, base_url=settings.api_root)
        self.bot_user_id: str | None = None
        self._notices: set[asyncio.Task[None]] = set()
        self._order = ChatOrder()
        self.counters: dict[str, int] = {"admitted": 0, "ignored": 0, "notices": 0, "errors": 0, "retries_seen": 0}
        self.app = AsyncApp(
            client=self.client,
            signing_secret=settings.signing_secret or "socket-mode-has-no-signing-secret",
            # Acknowledge only what admission stored: an event refused for an outage gets a 5xx (Events API),
            # which Slack redelivers; admission answers in milliseconds, well inside Slack's 3 s.
            process_before_response=True,
        )
        self.app.event("app_mention")(self._on_event)
        self.app.event("message")(self._on_event)
        # One listener serves both transports: the Events API route and Socket Mode feed the same app.
        self.app.event("reaction_added")(self._on_reaction)

    @property
    def socket_mode(self) -> bool:
        return bool(self.settings.app_token)

    def health(self) -> Health:
        health = self._supervisor.health()
        health.extra.update(
            self.counters,
            mode="socket" if self.socket_mode else "events_api",
            **self._ratings.figures(),
        )
        return health

    async def start(self, admit: Admit, rate: Rate | None = None) -> None:
        self._admit = admit
        self._ratings.rate = rate
        await self._supervisor.run(self._run_once)

    async def stop(self) -> None:
        self._supervisor.stop()

    async def _auth_test(self) -> dict[str, Any]:
        try:
            response = await self.client.auth_test()
        except SlackApiError as exc:
            if exc.response.get("error") in _AUTH_ERRORS:
                raise SlackTokenRefused(str(exc.response.get("error"))) from exc
            raise
        return dict(response.data) if isinstance(response.data, dict) else {}

    async def _run_once(self) -> None:
        auth = await self._auth_test()
        self.bot_user_id = auth.get("user_id")
        if self.socket_mode:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            handler = AsyncSocketModeHandler(self.app, app_token=self.settings.app_token, web_client=self.client)
            await handler.connect_async()
            try:
                self._supervisor.set_state(AdapterState.CONNECTED, f"socket mode, team {auth.get('team_id')}")
                await self._supervisor.stopping.wait()
            finally:
                await handler.close_async()
            return
        # Events API: Slack calls us. Being "connected" means our token works; probe it now and then.
        self._supervisor.set_state(AdapterState.CONNECTED, f"events API, team {auth.get('team_id')}")
        while not self._supervisor.stopping.is_set():
            try:
                await asyncio.wait_for(self._supervisor.stopping.wait(), self.settings.health_probe_s)
            except TimeoutError:
                await self._auth_test()

    async def _on_event(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        if (problem := event_problem(event)) is not None:  # Socket Mode skips the route's check
            record_rejection("slack", self.counters, problem)
            return
        if not answerable(event, self.bot_user_id):
            self.counters["ignored"] += 1
            return
        if self._admit is None:
            self.counters["errors"] += 1
            log.error("slack: event %s arrived before the adapter was started; dropped", body.get("event_id"))
            return
        try:
            envelope = to_envelope(body, event, self.bot_user_id)
        except (ValueError, KeyError) as exc:  # EnvelopeError and pydantic's errors are ValueErrors
            record_rejection("slack", self.counters, f"not a valid message: {exc}")
            return
        # Socket Mode cannot ask Slack to redeliver: an outage spools the message on the gateway's disk.
        # One channel's events are admitted one at a time, in the order they reached this listener.
        async with self._order.hold(envelope.conversation_id):
            result = await self._admit(envelope, spool=self.socket_mode)
        if result.decision is Admission.UNAVAILABLE:
            self.counters["errors"] += 1
            raise AdmissionUnavailable(result.reason)  # bolt answers 500: Slack sends the event again
        self.counters["admitted"] += 1
        if result.notice:
            # After the ack, not before it: Slack wants its answer within 3 s whatever its own API does.
            notice = asyncio.create_task(self._post_notice(envelope.conversation_id, result.notice, envelope.hints))
            self._notices.add(notice)
            notice.add_done_callback(self._notices.discard)

    async def _post_notice(self, channel: str, text: str, hints: dict[str, Any]) -> None:
        self.counters["notices"] += 1
        try:
            await self.client.chat_postMessage(channel=channel, text=text, thread_ts=hints["thread_ts"])
        except SlackApiError as exc:
            self.counters["errors"] += 1
            log.warning("slack: could not post a rate-limit notice: %s", exc)

    async def _on_reaction(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        if event_problem(event) is not None:
            self._ratings.ignore("malformed")
            return
        rating = to_rating(event, self.bot_user_id, str(body.get("team_id") or event.get("team") or ""))
        if isinstance(rating, str):
            self._ratings.ignore(rating)
            return
        if self._is_redelivery(str(body.get("event_id") or "")):
            self._ratings.ignore("redelivered")
            return
        await self._ratings.record(rating)

    def _is_redelivery(self, event_id: str) -> bool:
        if not event_id:
            return False
        if event_id in self._recent_reaction_events:
            return True
        self._recent_reaction_events[event_id] = None
        if len(self._recent_reaction_events) > _RECENT_REACTION_EVENTS:
            self._recent_reaction_events.popitem(last=False)
        return False
