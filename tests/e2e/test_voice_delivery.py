"""Voice replies through the real pipeline: `/voice on`, espeak-ng in a worker process, delivery to every platform.

The audio is checked from the bytes each simulator received (OGG/Opus decoded with opusdec, WAV
with sox) and, on the web chat, in a real Chromium playing the page's <audio> element. The emotion
test compares two web chat users whose conversations were clearly happy and clearly sad: the same
reply text is spoken higher and faster for the happy one, by the configured factors.

The no-engine test needs its own cluster and runs first, before the shared one exists, because two
clusters on one Redis would consume each other's queue.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from adapters.sim.common import SentRecord
from adapters.sim.llm import SimulatorProcess, long_reply
from patches.emotion_voice import DEFAULT_PRESETS
from tests.e2e.harness import Cluster, wait_until
from tests.e2e.platform_helpers import Platforms, queue_drained, running_platforms
from workers.voice.engine import detect_engine
from workers.voice.prosody import DURATION_TOLERANCE, F0_TOLERANCE, decode_to_pcm, measure
from workers.voice.settings import VoiceSettings

CHROMIUM = Path("/usr/bin/chromium")
MIN_SPEECH_S = 0.5  # every spoken reply here is a sentence or more

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not detect_engine(VoiceSettings())[0], reason="the local speech engine is not installed"),
]


def _llm_env(llm: SimulatorProcess) -> dict[str, str]:
    return {
        "PATCHBAY_LLM_MODEL": "openai/sim-model",
        "PATCHBAY_LLM_API_BASE": llm.base_url,
        "OPENAI_API_KEY": "sk-test",
    }


async def _decoded_seconds(data: bytes, mime_type: str) -> float:
    samples, rate = await decode_to_pcm(data, mime_type)
    return len(samples) / rate


# --------------------------------------------------------------------------- no engine (own cluster)


def test_without_a_speech_engine_the_bot_answers_in_text(make_cluster, sim_env, redis_client) -> None:
    missing = "/nonexistent/espeak-ng"
    cluster = make_cluster({**sim_env, "PATCHBAY_ESPEAK_PATH": missing, "PATCHBAY_EMBEDDING_MODEL": "hash"})
    cluster.start(workers=1)
    asked = cluster.chat("tina", "/voice on")
    assert asked.status_code == 200, asked.text
    assert asked.json()["reason"] == "voice_off"
    assert "Voice replies are not available here" in asked.json()["text"]
    assert "apt-get install espeak-ng" in asked.json()["text"]  # it says how to fix it

    answer = cluster.chat("tina", "hello, can you hear me?")
    assert answer.status_code == 200, answer.text
    assert "hello, can you hear me?" in answer.json()["text"]
    assert answer.json()["attachments"] == [] and answer.json()["reason"] is None
    wait_until(lambda: queue_drained(redis_client), what="the queue to drain")
    assert f"voice is off: not found: espeak-ng ({missing})" in cluster.logs("worker0")


# --------------------------------------------------------------------------- the shared stack


@dataclass(slots=True)
class Stack:
    cluster: Cluster
    platforms: Platforms
    llm: SimulatorProcess
    redis: redis.Redis


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    llm = SimulatorProcess()
    cluster = Cluster(redis_url, Path(tmp_path_factory.mktemp("voice")))
    env = {**_llm_env(llm), "ENABLE_EMOTION_VOICE": "true"}
    try:
        with running_platforms(cluster, env, workers=1) as platforms:
            yield Stack(cluster, platforms, llm, client)
    finally:
        llm.stop()
        client.close()


def _sent_to(stack: Stack, platform: str, chat_id: str) -> list[SentRecord]:
    return [record for record in stack.platforms.sent(platform) if record.chat_id == chat_id]


def _with_files(records: list[SentRecord]) -> list[SentRecord]:
    return [record for record in records if record.files]


def test_voice_replies_reach_telegram_discord_and_slack_as_ogg_opus(stack: Stack) -> None:
    platforms = stack.platforms
    telegram, discord, slack = platforms.telegram, platforms.discord, platforms.slack

    async def turn_voice_on_and_ask() -> dict[str, str]:
        await telegram.user_message(4242, "/voice on", user_id=4242)
        await discord.user_message(0, "/voice on", author_id=4343, dm=True)
        await slack.user_message("DVOICE", "/voice on", user="UVOICE", channel_type="im")
        await telegram.user_message(4244, "/voice on", user_id=4244)
        await telegram.user_message(4245, "no voice for me please", user_id=4245)  # never asked: text only
        await telegram.user_message(4244, "/voice off", user_id=4244)
        await telegram.user_message(4244, "and now?", user_id=4244)  # asked, then turned it off: text only
        message = await telegram.user_message(4242, "say something nice", user_id=4242)
        dm = await discord.user_message(0, "say something nice", author_id=4343, dm=True)
        event = await slack.user_message("DVOICE", "say something nice", user="UVOICE", channel_type="im")
        return {"telegram": str(message["message_id"]), "discord": str(dm["channel_id"]), "slack": event["ts"]}

    ids = platforms.call(turn_voice_on_and_ask())
    discord_channel = ids["discord"]
    wait_until(
        lambda: (
            _with_files(_sent_to(stack, "telegram", "4242"))
            and _with_files(_sent_to(stack, "discord", discord_channel))
            and _with_files(_sent_to(stack, "slack", "DVOICE"))
        ),
        timeout_s=90,
        what="a voice reply on each platform",
    )
    wait_until(lambda: queue_drained(stack.redis), what="the queue to drain")

    on_confirmations = [
        r.text for p, chat in (("telegram", "4242"), ("slack", "DVOICE")) for r in _sent_to(stack, p, chat)
    ]
    assert sum("Voice replies are on." in text for text in on_confirmations) == 2

    # Telegram: a voice note (sendVoice), quoting the question, after the text of the answer.
    voice_notes = [r for r in _sent_to(stack, "telegram", "4242") if r.method == "sendVoice"]
    assert len(voice_notes) == 1
    texts = [r for r in _sent_to(stack, "telegram", "4242") if r.method == "sendMessage"]
    assert any("say something nice" in r.text and r.reply_to == ids["telegram"] for r in texts)
    # Discord: the answer (streamed: posted, then edited until complete), then the audio upload.
    discord_sent = _sent_to(stack, "discord", discord_channel)
    uploads = _with_files(discord_sent)
    answers = [r for r in discord_sent if "say something nice" in r.text]
    assert len(uploads) == 1 and answers and discord_sent.index(answers[-1]) <= discord_sent.index(uploads[0])
    # Slack: a file upload into the message's thread.
    files = [r for r in _sent_to(stack, "slack", "DVOICE") if r.method == "files.completeUploadExternal"]
    assert len(files) == 1 and files[0].thread_id == ids["slack"]

    for platform, record in (("telegram", voice_notes[0]), ("discord", uploads[0]), ("slack", files[0])):
        (info,) = record.files
        data = platforms.by_name(platform).file_bytes(str(info["file_id"]))
        assert data[:4] == b"OggS" and info["ogg_valid"], platform
        assert info["name"].endswith(".ogg"), platform
        if shutil.which("opusdec"):
            assert asyncio.run(_decoded_seconds(data, "audio/ogg")) >= MIN_SPEECH_S, platform

    # Voice is per user: who never asked, or turned it off again, gets text only.
    for chat in ("4245", "4244"):
        assert not [r for r in _sent_to(stack, "telegram", chat) if r.method == "sendVoice"], chat
    assert any(r.text == "Voice replies are off." for r in _sent_to(stack, "telegram", "4244"))


def _wav_of(response: httpx.Response) -> bytes:
    assert response.status_code == 200, response.text
    (attachment,) = response.json()["attachments"]
    assert attachment["is_voice"] and attachment["mime_type"] == "audio/wav"
    prefix = "data:audio/wav;base64,"
    assert attachment["url"].startswith(prefix)
    return base64.b64decode(attachment["url"][len(prefix) :])


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)")
def test_web_chat_voice_reply_plays_in_a_browser(stack: Stack) -> None:
    from playwright.sync_api import sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(stack.cluster.url + "/")
            page.fill("#text", "/voice on")
            page.press("#text", "Enter")
            page.wait_for_selector(".msg.bot:has-text('Voice replies are on.')", timeout=60_000)
            page.fill("#text", "tell me a story")
            page.press("#text", "Enter")
            page.wait_for_selector(".msg.bot audio", timeout=60_000)
            played = page.evaluate(
                """async () => {
                    const audio = document.querySelector(".msg.bot audio");
                    if (audio.readyState < 1) {
                        await new Promise((resolve, reject) => {
                            audio.addEventListener("loadedmetadata", resolve, {once: true});
                            audio.addEventListener("error", () => reject(new Error("cannot load the audio")), {once: true});
                        });
                    }
                    await audio.play();
                    return {src: audio.src.slice(0, 22), duration: audio.duration, error: audio.error, paused: audio.paused};
                }"""
            )
        finally:
            browser.close()
    assert errors == []
    assert played["src"] == "data:audio/wav;base64,"
    assert played["error"] is None and played["paused"] is False
    assert played["duration"] >= MIN_SPEECH_S


def test_a_happy_conversation_is_spoken_higher_and_faster_than_a_sad_one(stack: Stack) -> None:
    cluster = stack.cluster
    conversations = {
        "happy": [
            "I am so happy today, this is wonderful! I love it, thank you so much!",
            "Great news, I got the job and I am thrilled, what a fantastic day!",
            "Everything is going so well, I feel amazing and grateful!",
        ],
        "sad": [
            "I am so sad, my dog died and I miss him terribly.",
            "I feel lonely and heartbroken, I cried all night.",
            "Nothing matters any more, I am so unhappy and alone.",
        ],
    }
    # The same words for both users: only the voice's pitch and pace may differ.
    stack.llm.configure(reply_chars=160)
    audio: dict[str, bytes] = {}
    try:
        for mood, messages in conversations.items():
            user = f"web-{mood}"
            assert cluster.chat(user, "/voice on").json()["text"] == "Voice replies are on."
            replies = [cluster.chat(user, text) for text in messages]
            assert replies[-1].json()["text"] == long_reply(160)
            audio[mood] = _wav_of(replies[-1])
    finally:
        stack.llm.configure(reply_chars=0)

    happy, sad = (asyncio.run(measure(audio[mood], "audio/wav")) for mood in ("happy", "sad"))
    expected_f0 = DEFAULT_PRESETS["happy"].pitch / DEFAULT_PRESETS["sad"].pitch  # 1.10 / 0.90
    expected_duration = DEFAULT_PRESETS["sad"].speed / DEFAULT_PRESETS["happy"].speed  # 0.95 / 1.05
    f0_ratio = happy.f0_hz / sad.f0_hz
    duration_ratio = happy.speech_s / sad.speech_s
    assert happy.f0_hz > sad.f0_hz and happy.speech_s < sad.speech_s
    assert abs(f0_ratio / expected_f0 - 1) <= F0_TOLERANCE, (f0_ratio, expected_f0)
    assert abs(duration_ratio / expected_duration - 1) <= DURATION_TOLERANCE, (duration_ratio, expected_duration)
