"""Users of a chaos run: Telegram and Slack users on the simulators, web chat users over HTTP.

Each driver sends planned messages, remembers how the platform will refer to them, and turns what
the platform received back into ``ReplySeen`` observations for ``score``. Telegram and Slack run on
the simulators' event loop (``Platforms``); the web chat runs in threads of its own because a web
chat request blocks until the reply.

The web chat's notion of a user lives in ``WebchatClient`` alone: it talks to the gateway as a site
does, server to server with a web chat API key (``Authorization: Bearer``, ``PATCHBAY_WEBCHAT_API_KEYS``)
naming the ``user_id`` it acts for, whose conversation is ``dm-<user_id>``. A change of identity
scheme is a change to that one class.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from adapters.webchat.outbound import REPLY_CHANNEL
from tests.chaos.plan import PlannedMessage
from tests.chaos.score import ReplySeen, SentMessage
from tests.e2e.harness import WEBCHAT_API_KEY
from tests.e2e.platform_helpers import Platforms

__all__ = ["Observations", "SlackUsers", "TelegramUsers", "WebchatClient", "WebchatTap"]

TELEGRAM_CHAT_BASE = 900_000
SLACK_USER_BASE = 9_000


def _text(message: PlannedMessage) -> str:
    # Short: the LLM simulator repeats the first 60 characters of the user's words.
    return f"{message.tag} hello, please answer"


def _record(
    message: PlannedMessage, platform: str, at: float, log_key: str, accepted_at: float | None = None
) -> SentMessage:
    return SentMessage(
        message.conversation.name,
        message.index,
        platform,
        message.tag,
        sent_at=at,
        accepted_at=accepted_at,
        log_key=log_key,
    )


@dataclass(slots=True)
class Observations:
    """What was sent and what came back, shared by the drivers' threads."""

    sent: dict[tuple[str, int], SentMessage] = field(default_factory=dict)
    replies: list[ReplySeen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_sent(self, message: SentMessage) -> None:
        with self.lock:
            self.sent[message.ref] = message

    def add_reply(self, reply: ReplySeen) -> None:
        with self.lock:
            self.replies.append(reply)

    def snapshot(self) -> tuple[list[SentMessage], list[ReplySeen]]:
        with self.lock:
            return list(self.sent.values()), list(self.replies)


class TelegramUsers:
    """One private chat per conversation; replies are matched by the message they reply to."""

    def __init__(self, platforms: Platforms, observations: Observations) -> None:
        self.platforms = platforms
        self.observations = observations
        self._route: dict[tuple[str, str], tuple[str, int]] = {}  # (chat id, message id) -> ref
        self._sent: list[tuple[SentMessage, int, int]] = []  # (message, chat id, message id), in send order

    async def send(self, message: PlannedMessage) -> str:
        chat = TELEGRAM_CHAT_BASE + message.conversation.number
        at = time.time()
        sent = await self.platforms.telegram.user_message(
            chat, _text(message), user_id=chat, user_name=f"user{message.conversation.number}"
        )
        # accepted at once: the update is in the simulator's queue, in order
        record = _record(message, "telegram", at, f":{chat}:{sent['message_id']}", accepted_at=at)
        self._route[(str(chat), str(sent["message_id"]))] = record.ref
        self._sent.append((record, chat, int(sent["message_id"])))
        self.observations.add_sent(record)
        return message.tag

    async def redeliver(self, rng: random.Random, recent_s: float = 10.0) -> str | None:
        """Serve again the update of a message sent in the last ``recent_s`` (any, if none is that recent)."""
        if not self._sent:
            return None
        now = time.time()
        recent = [item for item in self._sent if now - item[0].sent_at <= recent_s] or self._sent
        record, chat, message_id = rng.choice(recent)
        await self.platforms.telegram.redeliver(chat_id=chat, message_id=message_id)
        record.redelivered += 1
        return record.tag

    def replies(self) -> list[ReplySeen]:
        """Everything the bot sent on Telegram so far, matched to the message it replies to."""
        return [
            ReplySeen(self._route.get((item.chat_id, item.reply_to or "")), item.at, item.text, "telegram")
            for item in self.platforms.sent("telegram")
        ]


class SlackUsers:
    """One DM channel per conversation over the Events API; the bot answers in the message's thread."""

    def __init__(self, platforms: Platforms, observations: Observations) -> None:
        self.platforms = platforms
        self.observations = observations
        self._route: dict[tuple[str, str], tuple[str, int]] = {}
        self._records: dict[str, SentMessage] = {}  # event ts -> message

    async def send(self, message: PlannedMessage) -> str:
        number = SLACK_USER_BASE + message.conversation.number
        channel = f"D{number}"
        at = time.time()
        # A forced second delivery carries X-Slack-Retry-Num: 1, as when Slack thinks the first timed out.
        event = await self.platforms.slack.user_message(
            channel,
            _text(message),
            user=f"U{number}",
            channel_type="im",
            deliveries=2 if message.redelivered else None,
        )
        record = _record(message, "slack", at, f":{channel}:{event['ts']}")
        self._route[(channel, str(event["ts"]))] = record.ref
        self._records[str(event["ts"])] = record
        self.observations.add_sent(record)
        return message.tag

    def replies(self) -> list[ReplySeen]:
        """Everything the bot sent on Slack so far, matched to the message whose thread it answers in."""
        return [
            ReplySeen(self._route.get((item.chat_id, item.reply_to or "")), item.at, item.text, "slack")
            for item in self.platforms.sent("slack")
        ]

    def note_deliveries(self) -> None:
        """When each event was first acknowledged (its place in the conversation's order) and how often resent."""
        for delivery in list(self.platforms.slack.deliveries):
            record = self._records.get(str(delivery.get("event_ts")))
            if record is None:
                continue
            if int(delivery["retry_num"]) > 0:
                record.redelivered += 1
            status = delivery["status"]
            if isinstance(status, int) and 200 <= status < 300 and record.accepted_at is None:
                record.accepted_at = float(delivery["at"])


class WebchatClient:
    """One web chat user, behaving like the page: one message at a time, the next once the last is answered.

    A refused request (Redis down, gateway restarting, 5xx) is sent again with the same message id
    (the API's contract: a resend with the same id is the same message) until ``deadline``; a 504
    ("queued, will be answered") is followed by polling for the stored reply while the user goes on.
    """

    def __init__(
        self,
        base_url: str,
        number: int,
        observations: Observations,
        keys: dict[str, tuple[str, int]],
        stop: threading.Event,
        deadline: Callable[[], float],
    ) -> None:
        self.base_url = base_url
        self.user_id = f"chaos-web-{number}"
        self.conversation_id = f"dm-{self.user_id}"
        self.observations = observations
        self.keys = keys  # reply key -> ref, read by the tap
        self.stop = stop
        self.deadline = deadline  # monotonic time after which the client gives up
        self.pollers: list[threading.Thread] = []
        self.http = httpx.Client(
            timeout=httpx.Timeout(90.0, connect=5.0), headers={"Authorization": f"Bearer {WEBCHAT_API_KEY}"}
        )

    def reply_key(self, message_id: str) -> str:
        return f"webchat:webchat:{self.conversation_id}:{message_id}"

    def run(self, schedule: list[tuple[float, PlannedMessage]]) -> None:
        """``schedule``: (monotonic time, message); each is sent at that time or once its predecessor is answered."""
        try:
            for at, message in schedule:
                while not self.stop.is_set() and time.monotonic() < at:
                    time.sleep(min(0.05, at - time.monotonic()))
                if self.stop.is_set():
                    return
                self.send(message)
            for poller in self.pollers:  # the last answers may still be coming in
                while poller.is_alive() and not self.stop.is_set():
                    poller.join(timeout=0.2)
        finally:
            for poller in self.pollers:
                poller.join(timeout=5)
            self.http.close()

    def send(self, message: PlannedMessage) -> None:
        message_id = message.tag
        record = _record(message, "webchat", time.time(), f":{self.conversation_id}:{message_id}")
        self.keys[self.reply_key(message_id)] = record.ref
        self.observations.add_sent(record)
        body = {"user_id": self.user_id, "text": _text(message), "message_id": message_id}
        delay = 0.25
        while not self.stop.is_set() and time.monotonic() < self.deadline():
            attempt_at = time.time()
            try:
                response = self.http.post(self.base_url + "/api/chat", json=body)
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code == 200:
                record.accepted_at = attempt_at
                self._answered(record, response.json())
                return
            if response is not None and response.status_code == 504:
                record.accepted_at = attempt_at
                poller = threading.Thread(target=self._poll, args=(record, message_id), daemon=True)
                poller.start()
                self.pollers.append(poller)
                return
            if response is not None and response.status_code == 422:
                raise RuntimeError(f"the web chat refused a well-formed message: {response.text}")
            record.resends += 1
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _poll(self, record: SentMessage, message_id: str) -> None:
        url = f"{self.base_url}/api/chat/{self.conversation_id}/{message_id}"
        while not self.stop.is_set() and time.monotonic() < self.deadline():
            try:
                response = self.http.get(url, timeout=10)
                if response.status_code == 200:
                    self._answered(record, response.json())
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)

    def _answered(self, record: SentMessage, body: dict[str, Any]) -> None:
        self.observations.add_reply(ReplySeen(record.ref, time.time(), str(body.get("text", "")), "webchat-client"))


class WebchatTap:
    """Every web chat reply the workers publish, counted per message; it resubscribes after a Redis restart.

    Pub/sub is fire-and-forget, so a reply published while the tap is reconnecting is not seen here
    (the client still sees it): the tap can miss a duplicate, never invent one.
    """

    def __init__(self, redis_url: str, keys: dict[str, tuple[str, int]], observations: Observations) -> None:
        self.redis_url = redis_url
        self.keys = keys
        self.observations = observations
        self.reconnects = 0
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webchat-tap", daemon=True)
        self._thread.start()
        self._subscribed.wait(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            # No retries of its own: this loop reconnects, and a backoff would widen the window it is blind.
            client = redis.Redis.from_url(
                self.redis_url, socket_timeout=5, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0)
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(REPLY_CHANNEL)
                self._subscribed.set()
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    if message is not None and message.get("type") == "message":
                        self._record(message["data"])
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                self.reconnects += 1
                self._stop.wait(0.2)
            finally:
                try:
                    pubsub.close()
                    client.close()
                except (redis.ConnectionError, OSError):
                    pass

    def _record(self, data: bytes) -> None:
        reply = json.loads(data)
        ref = self.keys.get(str(reply.get("in_reply_to_key")))
        self.observations.add_reply(ReplySeen(ref, time.time(), str(reply.get("text", "")), "webchat-egress"))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
