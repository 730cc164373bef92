"""Every platform at once through the real pipeline: simulators ⇄ gateway process ⇄ Redis ⇄ worker processes.

The Discord, Telegram and Slack simulators run in this process (``platform_helpers.Platforms``) and
speak each platform's wire protocol on 127.0.0.1; the real client libraries in the gateway and the
workers talk to them unchanged. Most tests share one cluster (module fixture ``stack``) because
starting a gateway and two workers costs seconds; each uses chats of its own so they stay apart.
The outage test needs its own cluster and runs first, before the shared one exists, because two
clusters on one Redis would consume each other's queue.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from adapters.markdown import plain_text
from adapters.sim.common import SentRecord
from adapters.sim.llm import SimulatorProcess, long_reply
from adapters.sim.slack import DEFAULT_SIGNING_SECRET, sign_slack_request
from adapters.sim.telegram_entities import entity_error
from adapters.text import PLATFORM_LIMITS
from tests.e2e.harness import Cluster, wait_until
from tests.e2e.platform_helpers import (
    DISCORD_OPEN_CHANNEL,
    TELEGRAM_WEBHOOK_SECRET,
    Platforms,
    WebchatTap,
    platform_state,
    queue_drained,
    running_platforms,
)

pytestmark = pytest.mark.e2e

PLATFORMS = ("discord", "telegram", "slack")
_TAG = re.compile(r"\bmsg-(\d{3})\b")


@dataclass(frozen=True, slots=True)
class Expected:
    """Where the reply to one user message must land."""

    tag: str
    platform: str
    chat_id: str
    thread_id: str | None
    reply_to: str | None


@dataclass(slots=True)
class Stack:
    cluster: Cluster
    platforms: Platforms
    llm: SimulatorProcess
    redis: redis.Redis


def tag_of(text: str) -> str | None:
    match = _TAG.search(text)
    return match.group(0) if match else None


def replies_by_tag(platforms: Platforms) -> dict[str, list[tuple[str, SentRecord]]]:
    found: dict[str, list[tuple[str, SentRecord]]] = {}
    for platform in PLATFORMS:
        for record in platforms.sent(platform):
            found.setdefault(tag_of(record.text) or "", []).append((platform, record))
    return found


def llm_requests(llm: SimulatorProcess) -> int:
    return int(llm.stats()["chat_requests"])


# --------------------------------------------------------------------------- outage of one platform (own cluster)


def test_stopping_one_simulator_leaves_the_others_answering(make_cluster, sim_env, redis_client) -> None:
    cluster = make_cluster({**sim_env, "SLACK_HEALTH_PROBE": "1"})
    # Telegram long-polls here (the shared stack uses the webhook), so both inbound modes are covered.
    with running_platforms(cluster, {}, workers=1) as platforms:
        counter = iter(range(900, 1000))

        def ask(platform: str) -> Expected:
            return platforms.call(_send_one(platforms, platform, f"msg-{next(counter)}"))

        def answered(expected: Expected) -> bool:
            return bool(replies_by_tag(platforms).get(expected.tag))

        for down in PLATFORMS:
            platforms.stop_one(down)
            wait_until(
                lambda down=down: platform_state(cluster, down) in ("retrying", "failed"),
                timeout_s=60,
                interval_s=0.2,
                what=f"/healthz to show {down} as down",
            )
            up = [p for p in PLATFORMS if p != down]
            asked = [ask(platform) for platform in up]
            web = cluster.chat(f"web-outage-{down}", f"are you there while {down} is down?")
            for expected in asked:
                wait_until(lambda e=expected: answered(e), timeout_s=60, what=f"{expected.platform} to answer")
            assert web.status_code == 200 and "is down" in web.json()["text"]
            assert platform_state(cluster, down) in ("retrying", "failed")

            platforms.restart_one(down)
            wait_until(
                lambda down=down: platform_state(cluster, down) == "connected",
                timeout_s=90,
                interval_s=0.2,
                what=f"{down} to reconnect",
            )
            back = ask(down)
            wait_until(lambda e=back: answered(e), timeout_s=60, what=f"{down} to answer again")

        wait_until(lambda: queue_drained(redis_client), what="the queue to drain")
        counts = Counter(tag for tag, records in replies_by_tag(platforms).items() for _ in records)
        assert "" not in counts, "a reply that answers no message"
        assert set(counts.values()) == {1}


async def _send_one(platforms: Platforms, platform: str, tag: str) -> Expected:
    """A direct message on ``platform``, in a chat of its own (derived from the tag's number)."""
    number = int(tag.split("-")[1])
    if platform == "telegram":
        message = await platforms.telegram.user_message(5000 + number, f"{tag} hello", user_id=5000 + number)
        return Expected(tag, "telegram", str(5000 + number), None, str(message["message_id"]))
    if platform == "discord":
        sent = await platforms.discord.user_message(0, f"{tag} hello", author_id=5000 + number, dm=True)
        return Expected(tag, "discord", str(sent["channel_id"]), None, str(sent["id"]))
    channel = f"D{number}"
    event = await platforms.slack.user_message(channel, f"{tag} hello", user=f"U{number}", channel_type="im")
    return Expected(tag, "slack", channel, event["ts"], event["ts"])


# --------------------------------------------------------------------------- the shared stack


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    llm = SimulatorProcess()
    env = {"PATCHBAY_LLM_MODEL": "openai/sim-model", "PATCHBAY_LLM_API_BASE": llm.base_url, "OPENAI_API_KEY": "sk-test"}
    cluster = Cluster(redis_url, Path(tmp_path_factory.mktemp("platforms")))
    try:
        with running_platforms(cluster, env, telegram_webhook=True, workers=2) as platforms:
            yield Stack(cluster, platforms, llm, client)
    finally:
        llm.stop()
        client.close()


def _plan(platforms: Platforms) -> tuple[list[Callable[[], Awaitable[Expected | None]]], list[str]]:
    """200 addressed messages spread over many chats (send limits are per chat), plus a few the bot must ignore.

    Returns the message factories (each sends one message on the simulators' loop) and the
    web chat messages' tags; ``None`` from a factory marks a message that must get no reply.
    """
    telegram, discord, slack = platforms.telegram, platforms.discord, platforms.slack
    sends: list[Callable[[], Awaitable[Expected | None]]] = []
    numbers = iter(range(200))

    def tag() -> str:
        return f"msg-{next(numbers):03d}"

    def telegram_private(tag: str, chat: int) -> Callable[[], Awaitable[Expected]]:
        async def send() -> Expected:
            message = await telegram.user_message(chat, f"{tag} hello in private", user_id=chat)
            return Expected(tag, "telegram", str(chat), None, str(message["message_id"]))

        return send

    def telegram_group(tag: str, chat: int, topic: int | None) -> Callable[[], Awaitable[Expected]]:
        async def send() -> Expected:
            message = await telegram.user_message(
                chat, f"{tag} hello group", user_id=7000, chat_type="supergroup", mention=True, thread_id=topic
            )
            thread = None if topic is None else str(topic)
            return Expected(tag, "telegram", str(chat), thread, str(message["message_id"]))

        return send

    def discord_message(tag: str, channel: int, **how: Any) -> Callable[[], Awaitable[Expected]]:
        async def send() -> Expected:
            message = await discord.user_message(channel, f"{tag} hello discord", **how)
            chat = str(message["channel_id"])
            thread = chat if "thread_id" in how else None
            return Expected(tag, "discord", chat, thread, str(message["id"]))

        return send

    def slack_message(tag: str, channel: str, **how: Any) -> Callable[[], Awaitable[Expected]]:
        async def send() -> Expected:
            event = await slack.user_message(channel, f"{tag} hello slack", **how)
            thread = str(how.get("thread_ts") or event["ts"])  # the bot answers in the message's thread
            return Expected(tag, "slack", channel, thread, thread)

        return send

    def ignored(send_it: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
        async def send() -> None:
            await send_it()

        return send

    # Telegram (50): 35 private chats, 10 mentions in 5 groups, 5 mentions in one forum topic.
    sends += [telegram_private(tag(), 100 + i) for i in range(35)]
    sends += [telegram_group(tag(), -1000 - i % 5, None) for i in range(10)]
    sends += [telegram_group(tag(), -1099, 77) for _ in range(5)]
    sends.append(ignored(lambda: telegram.user_message(-1000, "msg-unaddressed group chatter", chat_type="group")))
    # Discord (50): 35 DMs, 5 mentions in #810, 5 plain messages in the open channel, 5 mentions in thread 820.
    sends += [discord_message(tag(), 0, dm=True, author_id=600 + i) for i in range(35)]
    sends += [discord_message(tag(), 810, mention=True, author_id=650 + i) for i in range(5)]
    sends += [discord_message(tag(), int(DISCORD_OPEN_CHANNEL), author_id=660 + i) for i in range(5)]
    sends += [discord_message(tag(), 810, thread_id=820, mention=True, author_id=670 + i) for i in range(5)]
    sends.append(ignored(lambda: discord.user_message(810, "msg-unaddressed channel chatter")))
    # Slack (50): 30 DMs, 15 mentions in 15 channels, a thread: its first message and 4 replies in it.
    sends += [slack_message(tag(), f"D{i:03d}", user=f"U{i:03d}", channel_type="im") for i in range(30)]
    sends += [slack_message(tag(), f"C{i:03d}", user=f"U{100 + i}", mention=True) for i in range(15)]
    parent_tag = tag()
    thread_parent: dict[str, str] = {}

    async def slack_thread_parent() -> Expected:
        event = await slack.user_message("CTHREAD", f"{parent_tag} starting a thread", user="U200", mention=True)
        thread_parent["ts"] = event["ts"]
        return Expected(parent_tag, "slack", "CTHREAD", event["ts"], event["ts"])

    def slack_in_thread(tag: str) -> Callable[[], Awaitable[Expected]]:
        async def send() -> Expected:
            parent = thread_parent["ts"]
            await slack.user_message("CTHREAD", f"{tag} in the thread", user="U201", mention=True, thread_ts=parent)
            return Expected(tag, "slack", "CTHREAD", parent, parent)

        return send

    sends.append(slack_thread_parent)
    sends += [slack_in_thread(tag()) for _ in range(4)]
    sends.append(ignored(lambda: slack.user_message("C000", "msg-unaddressed channel message")))
    webchat_tags = [tag() for _ in range(50)]
    return sends, webchat_tags


def test_two_hundred_messages_on_four_platforms_get_one_reply_each_in_place(stack: Stack) -> None:
    platforms, cluster = stack.platforms, stack.cluster
    tap = WebchatTap(stack.redis)
    before = llm_requests(stack.llm)
    sends, webchat_tags = _plan(platforms)

    async def send_all() -> list[Expected | None]:
        return [await send() for send in sends]  # in order: the Slack thread's parent comes first

    def webchat(tag: str) -> tuple[str, httpx.Response]:
        user = f"web-{int(tag[4:]) % 10}"
        return tag, cluster.chat(user, f"{tag} hello web", message_id=tag)

    try:
        with ThreadPoolExecutor(16) as pool:
            web_futures = [pool.submit(webchat, tag) for tag in webchat_tags]
            expected = [item for item in platforms.call(send_all(), timeout_s=120) if item is not None]
            web_results = [future.result(timeout=120) for future in web_futures]
        assert len(expected) + len(web_results) == 200

        wanted = {item.tag for item in expected}
        wait_until(
            lambda: wanted <= set(replies_by_tag(platforms)), timeout_s=120, interval_s=0.3, what="150 platform replies"
        )
        wait_until(lambda: queue_drained(stack.redis), what="the queue to drain")

        found = replies_by_tag(platforms)
        assert "" not in found, f"replies that answer no message: {[r.text for _, r in found.get('', [])]}"
        assert set(found) == wanted  # the unaddressed messages got nothing
        for item in expected:
            replies = found[item.tag]
            assert len(replies) == 1, f"{item.tag} got {len(replies)} replies"
            platform, record = replies[0]
            assert (platform, record.chat_id, record.thread_id, record.reply_to) == (
                item.platform,
                item.chat_id,
                item.thread_id,
                item.reply_to,
            ), item
        for tag, response in web_results:
            assert response.status_code == 200, response.text
            assert tag in response.json()["text"]
        web_keys = {f"webchat:webchat:dm-web-{int(tag[4:]) % 10}:{tag}" for tag in webchat_tags}
        assert dict(tap.counts) == dict.fromkeys(web_keys, 1)
        assert llm_requests(stack.llm) - before == 200
    finally:
        tap.close()


# --------------------------------------------------------------------------- long replies


def _chunks_cover(chunks: list[str], original: str) -> bool:
    """The chunks, in order, are the original text cut at whitespace (nothing lost, nothing added)."""
    return "".join("".join(chunks).split()) == "".join(original.split())


def test_long_replies_are_split_for_each_platform(stack: Stack) -> None:
    platforms = stack.platforms
    text = long_reply(9000)
    stack.llm.configure(reply_chars=len(text))
    try:
        asked = {p: platforms.call(_send_one(platforms, p, f"msg-{300 + i}")) for i, p in enumerate(PLATFORMS)}
        web = stack.cluster.chat("web-long", "msg-399 tell me everything")
        wait_until(lambda: queue_drained(stack.redis), what="the queue to drain")
        wait_until(
            lambda: all(_records_for(platforms, p, asked[p]) for p in PLATFORMS), what="the long replies to arrive"
        )
    finally:
        stack.llm.configure(reply_chars=0)
    assert web.status_code == 200 and web.json()["text"] == text  # the web chat shows it whole

    for platform in PLATFORMS:
        records = _records_for(platforms, platform, asked[platform])
        limit, measure = PLATFORM_LIMITS[platform]
        chunks = [record.text for record in records]
        assert len(chunks) >= -(-measure(text) // limit), (platform, [len(c) for c in chunks])
        assert all(measure(chunk) <= limit for chunk in chunks), platform
        assert all(chunk.count("```") % 2 == 0 for chunk in chunks), f"{platform} cut inside the code block"
        if platform == "telegram":  # Markdown arrives as text plus entities: the fences became a pre entity
            assert all(entity_error(r.text, r.raw.get("entities")) is None for r in records)
            assert any(e["type"] == "pre" for r in records for e in r.raw.get("entities", []))
        assert _chunks_cover(chunks, plain_text(text) if platform == "telegram" else text), platform
        expected = asked[platform]
        assert {(r.chat_id, r.thread_id) for r in records} == {(expected.chat_id, expected.thread_id)}
        assert records[0].reply_to == expected.reply_to


def _records_for(platforms: Platforms, platform: str, expected: Expected) -> list[SentRecord]:
    """Every message the bot sent in answer to ``expected`` (long replies are several), in order.

    Chunks after the first carry no tag of their own: the answer is every send into the chat (and
    thread) of the message, since each test writes into chats no other test uses.
    """
    return [
        record
        for record in platforms.sent(platform)
        if record.chat_id == expected.chat_id and (platform != "slack" or record.thread_id == expected.thread_id)
    ]


# --------------------------------------------------------------------------- 429 Retry-After


def test_an_injected_429_is_honoured_on_every_platform(stack: Stack) -> None:
    platforms = stack.platforms
    retry_after = 2.0
    for platform in PLATFORMS:
        platforms.by_name(platform).fail(count=1, status=429, retry_after=retry_after)
    asked = {p: platforms.call(_send_one(platforms, p, f"msg-{400 + i}")) for i, p in enumerate(PLATFORMS)}
    wait_until(lambda: all(_records_for(platforms, p, asked[p]) for p in PLATFORMS), what="the replies after the 429s")
    wait_until(lambda: queue_drained(stack.redis), what="the queue to drain")
    for platform in PLATFORMS:
        server = platforms.by_name(platform)
        assert server.failures_pending == 0, f"{platform}: the 429 was never served"
        refused_at = server.failures_served[-1][0]
        records = _records_for(platforms, platform, asked[platform])
        assert len(records) == 1, f"{platform} answered {len(records)} times"
        # The retry came after the platform's Retry-After: a correctness bound, not a speed one.
        assert records[0].at - refused_at >= retry_after - 0.05, platform


# --------------------------------------------------------------------------- Slack retries


def test_a_slack_event_delivered_four_times_is_answered_once(stack: Stack) -> None:
    platforms = stack.platforms
    before = llm_requests(stack.llm)
    event = platforms.call(platforms.slack.user_message("CRETRY", "msg-500 are you there?", mention=True, deliveries=4))
    deliveries = platforms.slack.deliveries[-4:]  # user_message returns once all four POSTs are answered
    assert len({d["event_id"] for d in deliveries}) == 1
    assert [(d["retry_num"], d["status"]) for d in deliveries] == [(0, 200), (1, 200), (2, 200), (3, 200)]
    expected = Expected("msg-500", "slack", "CRETRY", event["ts"], event["ts"])
    wait_until(lambda: _records_for(platforms, "slack", expected), what="the reply")
    wait_until(lambda: queue_drained(stack.redis), what="the queue to drain")
    assert len(_records_for(platforms, "slack", expected)) == 1
    assert llm_requests(stack.llm) - before == 1


# --------------------------------------------------------------------------- forged requests


def _slack_event_body(text: str) -> bytes:
    ts = f"{time.time():.6f}"
    event = {"type": "app_mention", "user": "U0EVE", "text": f"<@U0BOT> {text}", "ts": ts, "channel": "CFORGED"}
    body = {"type": "event_callback", "team_id": "T0SIM", "event": event, "event_id": f"Ev-forged-{ts}"}
    return json.dumps(body).encode()


def test_forged_or_stale_requests_are_refused_and_enqueue_nothing(stack: Stack) -> None:
    platforms, url = stack.platforms, stack.cluster.url
    before_llm = llm_requests(stack.llm)
    before_sent = {p: len(platforms.sent(p)) for p in PLATFORMS}
    body = _slack_event_body("msg-600 forged")
    now = str(int(time.time()))
    stale = str(int(time.time()) - 600)
    slack_attempts = {
        "forged signature": {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": "v0=" + "0" * 64},
        "signed with another secret": {
            "X-Slack-Request-Timestamp": now,
            "X-Slack-Signature": sign_slack_request("not-the-secret", now, body),
        },
        "stale timestamp": {
            "X-Slack-Request-Timestamp": stale,
            "X-Slack-Signature": sign_slack_request(DEFAULT_SIGNING_SECRET, stale, body),
        },
        "no signature": {},
    }
    for name, headers in slack_attempts.items():
        response = httpx.post(
            url + "/slack/events", content=body, headers={"Content-Type": "application/json", **headers}
        )
        assert response.status_code == 401, name
    update = {
        "update_id": 999_001,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": {"id": 6601, "type": "private", "first_name": "mallory"},
            "from": {"id": 6601, "is_bot": False, "first_name": "mallory"},
            "text": "msg-601 forged",
        },
    }
    for name, headers in {
        "wrong secret": {"X-Telegram-Bot-Api-Secret-Token": "guessed"},
        "no secret": {},
    }.items():
        response = httpx.post(url + "/telegram/webhook", json=update, headers=headers)
        assert response.status_code == 403, name
    assert stack.redis.llen("patchbay") == 0

    # The same routes do work: a correctly signed Slack event and a correct Telegram secret are answered.
    timestamp = str(int(time.time()))
    genuine = _slack_event_body("msg-602 genuine")
    response = httpx.post(
        url + "/slack/events",
        content=genuine,
        headers={
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": sign_slack_request(DEFAULT_SIGNING_SECRET, timestamp, genuine),
        },
    )
    assert response.status_code == 200
    update["message"]["text"] = "msg-603 genuine"  # type: ignore[index]
    response = httpx.post(
        url + "/telegram/webhook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_WEBHOOK_SECRET}
    )
    assert response.status_code == 200
    wait_until(lambda: {"msg-602", "msg-603"} <= set(replies_by_tag(platforms)), what="the genuine replies")
    wait_until(lambda: queue_drained(stack.redis), what="the queue to drain")
    # Only the two genuine messages reached a worker and the model, and only they were answered.
    assert llm_requests(stack.llm) - before_llm == 2
    after_sent = {p: len(platforms.sent(p)) - before_sent[p] for p in PLATFORMS}
    assert after_sent == {"discord": 0, "telegram": 1, "slack": 1}
    assert not {"msg-600", "msg-601"} & set(replies_by_tag(platforms))


# --------------------------------------------------------------------------- satisfaction


def test_reactions_on_discord_and_slack_replies_are_linked_to_the_reply_they_rate(stack: Stack) -> None:
    import sqlite3

    platforms = stack.platforms
    asked = {p: platforms.call(_send_one(platforms, p, f"msg-{600 + i}")) for i, p in enumerate(("discord", "slack"))}
    wait_until(lambda: all(_records_for(platforms, p, asked[p]) for p in asked), what="the replies")
    discord_reply = _records_for(platforms, "discord", asked["discord"])[0]
    slack_reply = _records_for(platforms, "slack", asked["slack"])[0]
    platforms.call(platforms.discord.user_reaction(discord_reply.chat_id, discord_reply.message_id, 5600, "👍"))
    platforms.call(platforms.slack.user_reaction(slack_reply.chat_id, slack_reply.message_id, "U601", "-1"))

    database = stack.cluster.data_dir / "patchbay.db"

    def linked() -> list[tuple[str, int]]:
        with sqlite3.connect(database) as db:  # the gateway's analytics writer fills it off the reply path
            return db.execute(
                "SELECT e.platform, e.value FROM analytics_events e"
                " JOIN analytics_reply_ids r ON r.reply_id = e.reply_id WHERE e.kind = 'reaction' ORDER BY e.platform"
            ).fetchall()

    assert wait_until(lambda: len(linked()) == 2 and linked(), what="both reactions to be stored") == [
        ("discord", 1),
        ("slack", -1),
    ]
