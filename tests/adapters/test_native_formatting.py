"""Native formatting through the real senders (python-telegram-bot, slack_sdk, discord.py) against the
simulators, which check what they receive as each platform does (issue 15, item 7).

A Markdown answer with bold, a list, a link and a fenced code block arrives on Telegram as text plus
entities (no literal ``**``), on Slack as one ``markdown`` block, on Discord as written; an answer
longer than each platform's limit is split without breaking any of them.
"""

from __future__ import annotations

import asyncio

import discord
import pytest
from discord.http import HTTPClient, handle_message_parameters
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from telegram import Bot, MessageEntity
from telegram.error import BadRequest

from adapters.discord import DiscordSettings
from adapters.discord.sender import DiscordSender
from adapters.egress_limits import EgressLimits
from adapters.sim.discord import DiscordSimulator
from adapters.sim.slack import SlackSimulator
from adapters.sim.telegram import TelegramSimulator
from adapters.sim.telegram_entities import entity_error
from adapters.slack import SlackSettings
from adapters.slack.sender import SlackSender
from adapters.telegram import TelegramSettings
from adapters.telegram.formatting import FORMAT_FALLBACKS
from adapters.telegram.sender import TelegramSender
from adapters.text import utf16_length
from gateway.shared.envelope import Platform, Reply

ANSWER = (
    "Sure! Here is **how to start** 🚀:\n\n"
    "1. Install it\n"
    "2. Read [the guide](https://example.org/guide)\n\n"
    "```python\nimport patchbay\nprint(patchbay.__doc__)\n```\n\n"
    "That's *all*."
)


def long_answer(code_lines: int, paragraphs: int) -> str:
    """Bold, a link and a list in every paragraph; one fenced code block longer than Discord's limit."""
    code = "```python\n" + "\n".join(f"value_{i} = compute({i})  # step {i}" for i in range(code_lines)) + "\n```"
    prose = [
        f"Paragraph {i} is **important** and links to [page {i}](https://example.org/{i}).\n- first point\n- second point"
        for i in range(paragraphs)
    ]
    return "\n\n".join([*prose[: paragraphs // 2], code, *prose[paragraphs // 2 :]])


def reply_to(platform: Platform, conversation: str, text: str) -> Reply:
    return Reply(platform=platform, bot_id="1", conversation_id=conversation, in_reply_to_key="k", text=text)


def covered(text: str, entity: dict) -> str:
    encoded = text.encode("utf-16-le")
    return encoded[2 * entity["offset"] : 2 * (entity["offset"] + entity["length"])].decode("utf-16-le")


# ---------------------------------------------------------------- Telegram


@pytest.fixture
async def telegram(redis_url: str, redis_client):
    async with TelegramSimulator() as sim:
        settings = TelegramSettings(bot_token=sim.token, api_base_url=sim.base_url)
        sender = TelegramSender(settings, EgressLimits(redis_url))
        yield sim, sender
        await sender.aclose()


async def test_telegram_gets_text_and_entities(telegram) -> None:
    sim, sender = telegram
    ids = await sender.send(reply_to(Platform.TELEGRAM, "42", ANSWER))
    (record,) = sim.sent
    assert ids == [record.message_id]
    text, entities = record.text, record.raw["entities"]
    assert "**" not in text and "```" not in text and "](" not in text
    assert "parse_mode" not in record.raw, "entities, never a parse mode"
    assert entity_error(text, entities) is None
    spans = {(e["type"], covered(text, e)) for e in entities}
    assert {("bold", "how to start"), ("italic", "all"), ("text_link", "the guide")} <= spans
    assert next(e for e in entities if e["type"] == "text_link")["url"] == "https://example.org/guide"
    pre = next(e for e in entities if e["type"] == "pre")
    assert pre["language"] == "python" and "import patchbay" in covered(text, pre)
    assert "1. Install it" in text and "2. Read the guide" in text
    stored = sim.messages[(42, int(record.message_id))]
    assert stored["entities"] == entities, "the message Telegram returns carries them"


async def test_telegram_long_answer_splits_with_entities_intact(telegram) -> None:
    sim, sender = telegram
    answer = long_answer(code_lines=250, paragraphs=120)
    ids = await sender.send(reply_to(Platform.TELEGRAM, "43", answer))
    assert len(ids) == len(sim.sent) >= 3
    code_lines: list[str] = []
    for record in sim.sent:
        text, entities = record.text, record.raw.get("entities", [])
        assert utf16_length(text) <= 4096 and entity_error(text, entities) is None
        assert "**" not in text
        assert all(covered(text, e) == "important" for e in entities if e["type"] == "bold")
        links = [e for e in entities if e["type"] == "text_link"]
        assert all(covered(text, e) == f"page {e['url'].rsplit('/', 1)[1]}" for e in links)
        code_lines += [line for e in entities if e["type"] == "pre" for line in covered(text, e).split("\n") if line]
    assert code_lines == [f"value_{i} = compute({i})  # step {i}" for i in range(250)], "all code inside pre"
    assert sum(r.text.count("Paragraph ") for r in sim.sent) == 120


async def test_telegram_refusing_entities_gets_plain_text(telegram) -> None:
    sim, sender = telegram
    before = FORMAT_FALLBACKS._value.get()
    sim.refuse_entities = 1
    ids = await sender.send(reply_to(Platform.TELEGRAM, "44", ANSWER))
    (record,) = sim.sent
    assert ids == [record.message_id]
    assert record.text == ANSWER and "entities" not in record.raw, "the Markdown as written, plain"
    assert FORMAT_FALLBACKS._value.get() == before + 1
    assert [m for _, m in sim.requests].count("sendMessage") == 2, "one refused, one delivered: one message"


async def test_telegram_simulator_refuses_entities_past_the_text(telegram) -> None:
    sim, _ = telegram
    async with Bot(sim.token, base_url=f"{sim.base_url}/bot") as bot:
        # "a😀b" is 3 characters to Python and 4 UTF-16 code units to Telegram: length 4 fits, 5 does not.
        await bot.send_message(45, "a😀b", entities=[MessageEntity("bold", 0, 4)])
        with pytest.raises(BadRequest, match=r"(?i)can't parse entities: entity beginning at UTF-16 offset 0"):
            await bot.send_message(45, "a😀b", entities=[MessageEntity("bold", 0, 5)])
    assert len(sim.sent) == 1


# ---------------------------------------------------------------- Slack


@pytest.fixture
async def slack(redis_url: str, redis_client):
    async with SlackSimulator() as sim:
        sender = SlackSender(SlackSettings(bot_token=sim.token, api_base_url=sim.base_url), EgressLimits(redis_url))
        yield sim, sender
        await sender.aclose()


async def test_slack_gets_one_markdown_block(slack) -> None:
    sim, sender = slack
    reply = Reply(
        platform=Platform.SLACK, bot_id="T", conversation_id="C1", in_reply_to_key="k", text=ANSWER,
        hints={"thread_ts": "1.1"},
    )  # fmt: skip
    await sender.send(reply)
    (record,) = sim.sent
    assert record.raw["blocks"] == [{"type": "markdown", "text": ANSWER}]
    assert record.thread_id == "1.1"
    notification = record.raw["text"]
    assert "how to start" in notification and "**" not in notification and "```" not in notification


async def test_slack_long_answer_splits_into_whole_blocks(slack) -> None:
    sim, sender = slack
    answer = long_answer(code_lines=600, paragraphs=200)
    assert len(answer) > 24_000
    ids = await sender.send(reply_to(Platform.SLACK, "C2", answer))
    assert len(ids) == len(sim.sent) >= 3
    for record in sim.sent:
        (block,) = record.raw["blocks"]
        assert block["type"] == "markdown" and len(block["text"]) <= 12_000
        assert block["text"].count("```") % 2 == 0 and block["text"].count("**") % 2 == 0
        assert block["text"].count("[page") == block["text"].count("](https://example.org/")
    assert sum(r.text.count("value_") for r in sim.sent) == 600


async def test_slack_simulator_refuses_an_oversized_markdown_block(slack) -> None:
    sim, _ = slack
    client = AsyncWebClient(token=sim.token, base_url=sim.base_url)
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel="C3", text="x", blocks=[{"type": "markdown", "text": "a" * 12_001}])
    assert refused.value.response["error"] == "invalid_blocks"
    assert "json-pointer:/blocks" in refused.value.response["errors"][0]
    assert not sim.sent


# ---------------------------------------------------------------- Discord


@pytest.fixture
async def discord_pair(redis_url: str, redis_client):
    async with DiscordSimulator() as sim:
        settings = DiscordSettings(bot_token=sim.token, api_base_url=sim.api_base_url, gateway_url=sim.gateway_url)
        sender = DiscordSender(settings, EgressLimits(redis_url))
        yield sim, sender
        await sender.aclose()


async def test_discord_gets_the_markdown_as_written(discord_pair) -> None:
    sim, sender = discord_pair
    await sender.send(reply_to(Platform.DISCORD, "810", ANSWER))
    (record,) = sim.sent
    assert record.text == ANSWER


async def test_discord_long_answer_never_splits_a_code_block_open(discord_pair) -> None:
    sim, sender = discord_pair
    answer = long_answer(code_lines=120, paragraphs=40)
    ids = await sender.send(reply_to(Platform.DISCORD, "810", answer))
    texts = [r.text for r in sim.sent]
    assert len(ids) == len(texts) >= 4
    assert all(len(t) <= 2000 for t in texts)
    for text in texts:
        fences = [line for line in text.split("\n") if line.startswith("```")]
        assert len(fences) % 2 == 0, text
        assert all(fence in ("```python", "```") for fence in fences)
        assert text.count("**") % 2 == 0 and text.count("[page") == text.count("](https://example.org/")
    assert sum(t.count("value_") for t in texts) == 120
    assert sum(t.count("Paragraph ") for t in texts) == 40


async def test_discord_simulator_refuses_2001_characters(discord_pair) -> None:
    sim, _ = discord_pair
    DiscordSettings(bot_token=sim.token, api_base_url=sim.api_base_url).point_library_here()
    http = HTTPClient(asyncio.get_running_loop())
    await http.static_login(sim.token)
    try:
        with handle_message_parameters(content="x" * 2001) as params, pytest.raises(discord.HTTPException) as refused:
            await http.send_message("810", params=params)
    finally:
        await http.close()
    assert refused.value.status == 400 and refused.value.code == 50035
    assert "2000 or fewer" in str(refused.value)
    assert not sim.sent
