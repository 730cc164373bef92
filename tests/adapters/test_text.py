"""split_message: every chunk fits, prose breaks at the gentlest boundary, code fences stay balanced."""

from __future__ import annotations

import random

import pytest

from adapters.text import PLATFORM_LIMITS, split_message, utf16_length


def fences_balanced(chunk: str) -> bool:
    return sum(line.lstrip().startswith("```") for line in chunk.split("\n")) % 2 == 0


def words(text: str) -> list[str]:
    return [w for w in text.split() if not w.startswith("```")]


def test_short_text_is_one_chunk_and_empty_text_none() -> None:
    assert split_message("hello", 2000) == ["hello"]
    assert split_message("  \n ", 2000) == []


def test_paragraph_boundaries_are_preferred() -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * 30 for i in range(20)]
    chunks = split_message("\n\n".join(p.strip() for p in paragraphs), 500)
    assert all(len(c) <= 500 for c in chunks)
    assert all(c.startswith("Paragraph") for c in chunks), "no chunk starts mid-paragraph"


def test_a_long_paragraph_breaks_between_sentences() -> None:
    text = " ".join(f"This is sentence {i} and it is fine." for i in range(100))
    chunks = split_message(text, 300)
    assert all(len(c) <= 300 for c in chunks)
    assert all(c.endswith(".") for c in chunks)


def test_a_word_longer_than_the_limit_is_cut() -> None:
    chunks = split_message("x" * 250, 100)
    assert [len(c) for c in chunks] == [100, 100, 50]


def test_code_block_is_not_split_when_it_fits() -> None:
    code = "```python\n" + "\n".join(f"print({i})" for i in range(20)) + "\n```"
    text = "intro " * 60 + "\n\n" + code + "\n\n" + "outro " * 60
    chunks = split_message(text, len(code) + 10)
    assert code in chunks


def test_oversized_code_block_is_closed_and_reopened_with_its_language() -> None:
    code = "```rust\n" + "\n".join(f"let v{i} = {i};" for i in range(300)) + "\n```"
    chunks = split_message(code, 400)
    assert len(chunks) > 1
    assert all(len(c) <= 400 and fences_balanced(c) and c.startswith("```rust\n") for c in chunks)
    assert sum(c.count("let v") for c in chunks) == 300


@pytest.mark.parametrize("platform", sorted(PLATFORM_LIMITS))
def test_random_documents_respect_every_platform_limit(platform: str) -> None:
    limit, measure = PLATFORM_LIMITS[platform]
    rng = random.Random(platform)
    vocabulary = ["alpha", "beta", "gamma", "delta", "épsilon", "😀", "end.", "why?", "yes!"]
    for _ in range(20):
        blocks = []
        for _ in range(rng.randint(1, 30)):
            if rng.random() < 0.3:
                body = "\n".join(
                    " ".join(rng.choices(vocabulary, k=rng.randint(1, 12))) for _ in range(rng.randint(1, 80))
                )
                blocks.append(f"```\n{body}\n```")
            else:
                blocks.append(" ".join(rng.choices(vocabulary, k=rng.randint(1, 400))))
        text = "\n\n".join(blocks)
        chunks = split_message(text, limit, measure=measure)
        assert all(measure(c) <= limit for c in chunks)
        assert all(fences_balanced(c) for c in chunks)
        assert words("\n".join(chunks)) == words(text), "nothing lost, nothing reordered"


def test_telegram_counts_utf16_units() -> None:
    assert utf16_length("😀") == 2
    chunks = split_message("😀" * 3000, 4096, measure=utf16_length)
    assert all(utf16_length(c) <= 4096 for c in chunks) and len(chunks) == 2
