"""Native formatting, piece by piece: the split keeps inline spans whole, each platform's conversion of
Markdown, and the simulators' checks of what they receive (Telegram entities, Slack blocks)."""

from __future__ import annotations

import pytest

from adapters.discord.formatting import render_markdown as discord_render
from adapters.sim.slack_blocks import blocks_error, shown_text
from adapters.sim.telegram_entities import entity_error
from adapters.slack.blocks import render_markdown as slack_render
from adapters.telegram.formatting import render_markdown as telegram_render
from adapters.text import split_message, utf16_length

RICH = (
    "Here is **the plan** for today:\n\n"
    "- buy *milk*\n"
    "- read [the docs](https://example.org/docs)\n\n"
    "```python\nprint('hello **not bold**')\n```\n\n"
    "Done 😀 **really**."
)


def entity_dicts(part) -> list[dict]:  # type: ignore[no-untyped-def]
    return [e.to_dict() for e in part.entities]


def covered(text: str, entity: dict) -> str:
    """The characters an entity covers (offsets are UTF-16 code units)."""
    encoded = text.encode("utf-16-le")
    return encoded[2 * entity["offset"] : 2 * (entity["offset"] + entity["length"])].decode("utf-16-le")


# ---------------------------------------------------------------- the split


def test_a_cut_never_falls_inside_bold_code_or_a_link() -> None:
    sentence = "Plain words here. "
    spans = ["**a bold run. Of two sentences.**", "`code with. a dot`", "[a link. with dots](https://e.org/x)"]
    text = "".join(sentence * 3 + span + " " for span in spans * 6).strip()
    for limit in (60, 80, 120):
        chunks = split_message(text, limit)
        assert all(len(c) <= limit for c in chunks)
        for chunk in chunks:
            assert chunk.count("**") % 2 == 0 and chunk.count("`") % 2 == 0, chunk
            assert chunk.count("[") == chunk.count("](") == chunk.count(")"), chunk


def test_a_stray_marker_does_not_glue_the_rest_together() -> None:
    text = "2 ** 3 is eight. " + "More words follow here. " * 30
    chunks = split_message(text, 100)
    assert all(len(c) <= 100 for c in chunks) and len(chunks) > 5


# ---------------------------------------------------------------- Telegram


def test_telegram_markdown_becomes_text_and_entities() -> None:
    (part,) = telegram_render(RICH)
    assert "**" not in part.text.replace("**not bold**", "") and "](" not in part.text
    entities = entity_dicts(part)
    assert entity_error(part.text, entities) is None
    by_type = {(e["type"], covered(part.text, e)) for e in entities}
    assert ("bold", "the plan") in by_type and ("bold", "really") in by_type
    assert ("italic", "milk") in by_type
    link = next(e for e in entities if e["type"] == "text_link")
    assert (covered(part.text, link), link["url"]) == ("the docs", "https://example.org/docs")
    pre = next(e for e in entities if e["type"] == "pre")
    assert pre["language"] == "python" and covered(part.text, pre).strip() == "print('hello **not bold**')"
    assert part.plain == RICH, "the fallback is the Markdown as written"


def test_telegram_long_answer_splits_with_whole_entities() -> None:
    code = "```sh\n" + "\n".join(f"echo line {i}" for i in range(700)) + "\n```"
    paragraphs = [f"Paragraph {i} has **bold words** and a [link](https://e.org/{i}) 🚀." for i in range(150)]
    markdown = "\n\n".join([*paragraphs[:75], code, *paragraphs[75:]])
    parts = telegram_render(markdown)
    assert len(parts) >= 3
    for part in parts:
        entities = entity_dicts(part)
        assert utf16_length(part.text) <= 4096
        assert entity_error(part.text, entities) is None
        assert "**" not in part.text
        for entity in entities:
            if entity["type"] == "bold":
                assert covered(part.text, entity) == "bold words"
    echoed = [line for part in parts for line in part.text.split("\n") if line.startswith("echo line")]
    assert echoed == [f"echo line {i}" for i in range(700)], "the code block split, nothing lost"
    pre_lines = sum(
        covered(part.text, e).count("echo line") for part in parts for e in entity_dicts(part) if e["type"] == "pre"
    )
    assert pre_lines == 700, "every line of code is inside a pre entity in its part"


@pytest.mark.parametrize(
    ("text", "entities", "complaint"),
    [
        ("hi 😀 there", [{"type": "bold", "offset": 3, "length": 9}], "ends after the end of the text"),
        ("hi 😀", [{"type": "bold", "offset": 4, "length": 1}], "surrogate"),
        ("hello", [{"type": "shiny", "offset": 0, "length": 2}], "unsupported entity type"),
        ("hello", [{"type": "text_link", "offset": 0, "length": 2}], "no url"),
        ("hello", [{"type": "bold", "offset": 0, "length": 0}], "wrong offset or length"),
        (
            "hello world",
            [{"type": "bold", "offset": 0, "length": 7}, {"type": "italic", "offset": 3, "length": 6}],
            "overlaps",
        ),
        (
            "hello world",
            [{"type": "code", "offset": 0, "length": 11}, {"type": "bold", "offset": 2, "length": 3}],
            "can't contain",
        ),
        ("hello", "bold", "must be an array"),
    ],
)
def test_the_telegram_simulator_refuses_malformed_entities(text: str, entities: object, complaint: str) -> None:
    problem = entity_error(text, entities)
    assert problem is not None and problem.startswith("can't parse entities") and complaint in problem


def test_the_telegram_simulator_accepts_nested_entities_in_utf16_units() -> None:
    text = "😀😀 bold and italic"  # two emoji: 4 UTF-16 units, 2 Python characters
    entities = [{"type": "bold", "offset": 5, "length": 15}, {"type": "italic", "offset": 14, "length": 6}]
    assert entity_error(text, entities) is None
    assert covered(text, entities[1]) == "italic"


# ---------------------------------------------------------------- Slack


def test_slack_markdown_goes_in_a_markdown_block_with_a_plain_fallback() -> None:
    (part,) = slack_render(RICH)
    assert part.blocks == [{"type": "markdown", "text": RICH}]
    assert "**the plan**" not in part.text and "the plan" in part.text and "](" not in part.text
    assert blocks_error(part.text, part.blocks) is None


def test_slack_long_answer_splits_into_blocks_within_the_limit() -> None:
    code = "```\n" + "\n".join(f"row {i} of a long listing" for i in range(900)) + "\n```"
    markdown = "Intro with **bold**.\n\n" + code + "\n\n" + "Closing **words** here. " * 400
    parts = slack_render(markdown)
    assert len(parts) >= 3
    for part in parts:
        (block,) = part.blocks
        assert block["type"] == "markdown" and len(block["text"]) <= 12_000
        assert block["text"].count("```") % 2 == 0 and block["text"].count("**") % 2 == 0
        assert blocks_error(part.text, part.blocks) is None and len(part.text) <= 3_000
    assert sum(p.blocks[0]["text"].count("row ") for p in parts) == 900


def test_the_slack_simulator_refuses_what_slack_refuses() -> None:
    too_big = blocks_error("x", [{"type": "markdown", "text": "a" * 7_000}, {"type": "markdown", "text": "b" * 5_001}])
    assert too_big is not None and too_big["error"] == "invalid_blocks" and "12000" in too_big["errors"][0]
    unknown = blocks_error("x", [{"type": "mrkdwn_section", "text": "hi"}])
    assert unknown is not None and "/blocks/0/type" in unknown["errors"][0]
    empty = blocks_error("x", [{"type": "markdown", "text": ""}])
    assert empty is not None and "more than 0 characters" in empty["errors"][0]
    assert blocks_error("x", "not json") == {"ok": False, "error": "invalid_blocks_format"}
    assert blocks_error("y" * 40_001, None) == {"ok": False, "error": "msg_too_long"}
    assert shown_text("fallback", [{"type": "markdown", "text": "**shown**"}]) == "**shown**"


# ---------------------------------------------------------------- Discord


def test_discord_markdown_is_kept_and_code_blocks_reopen_with_their_language() -> None:
    assert discord_render(RICH) == [RICH]
    code = "```rust\n" + "\n".join(f"let v{i} = {i};" for i in range(400)) + "\n```"
    parts = discord_render("Look: **this** code.\n\n" + code)
    assert len(parts) >= 3 and all(len(p) <= 2000 for p in parts)
    assert all(p.count("```") % 2 == 0 for p in parts)
    assert all(p.startswith("```rust\n") for p in parts[1:])
    assert sum(p.count("let v") for p in parts) == 400


def test_angle_brackets_outside_code_are_text_not_html() -> None:
    (part,) = telegram_render("if a<b and c>d, see <https://e.org> and `x<y>`")
    assert part.text.startswith("if a<b and c>d, see https://e.org and x<y>")
    assert {e["type"] for e in entity_dicts(part)} == {"text_link", "code"}
    (slack,) = slack_render("keep <this> & that")
    assert slack.text == "keep &lt;this&gt; &amp; that" and slack.blocks[0]["text"] == "keep <this> & that"


def test_an_answer_cannot_ping_a_slack_channel() -> None:
    (part,) = slack_render("Hey <!channel> and <!here>, ask <@U123> in <#C42>; literally: `<!channel>`")
    block = part.blocks[0]["text"]
    assert "<!channel>" not in block.replace("`<!channel>`", "") and "<!here>" not in block
    assert "<@U123>" not in block and "<#C42>" not in block
    assert block.replace("\u200b", "") == "Hey <!channel> and <!here>, ask <@U123> in <#C42>; literally: `<!channel>`"
    assert "`<!channel>`" in block, "code is left as written"
    assert "<!" not in part.text and "<@" not in part.text, "the notification text is escaped"
