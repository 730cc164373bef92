"""The offline model's sampling and where its answer stops (workers/llm/sampling.py)."""

from __future__ import annotations

from workers.llm.sampling import PREVIOUS_SAMPLING, SAMPLING, ends_at_sentence, finish_text, trim_to_sentence


def test_request_temperature_is_capped_and_budget_bounded() -> None:
    hot = SAMPLING.llama_kwargs(max_tokens=10_000, temperature=0.7)
    assert hot["temperature"] == SAMPLING.temperature < 0.7
    assert hot["max_tokens"] == SAMPLING.max_tokens
    assert hot["repeat_penalty"] == SAMPLING.repeat_penalty > 1.0
    cold = SAMPLING.llama_kwargs(max_tokens=24, temperature=0.0)
    assert (cold["temperature"], cold["max_tokens"]) == (0.0, 24), "an explicit lower value is honoured"
    assert PREVIOUS_SAMPLING.llama_kwargs(200, 0.7)["repeat_penalty"] == 1.0


def test_an_unfinished_sentence_is_trimmed_away() -> None:
    assert trim_to_sentence("Hello there! I am Patchbay. I can help with many thi") == "Hello there! I am Patchbay."
    assert trim_to_sentence('He said "yes." Then he wal') == 'He said "yes."'
    assert trim_to_sentence("Is it? Maybe") == "Is it?"


def test_finished_text_is_left_alone() -> None:
    for text in ["Hi! How can I help you today? 😊", "Sure.", "Here it is:\n```\nx = 1\n```", "Great (really)."]:
        assert ends_at_sentence(text), text
        assert trim_to_sentence(text) == text.rstrip()


def test_list_numbers_are_not_sentence_ends() -> None:
    text = "Pack these:\n1. Water\n2. Snacks\n3. A ma"
    assert trim_to_sentence(text) == "Pack these:\n1. Water\n2. Snacks"
    assert trim_to_sentence("Steps:\n1. Op") == "Steps:"


def test_a_cut_inside_a_code_block_closes_the_fence() -> None:
    trimmed = trim_to_sentence("Try this.\n```python\nx = 1\ny = ")
    assert trimmed == "Try this.\n```python\nx = 1\n```"
    assert trimmed.count("```") % 2 == 0


def test_no_sentence_at_all_keeps_the_words_and_marks_the_cut() -> None:
    assert trim_to_sentence("well the thing is that") == "well the thing is that…"


def test_finish_text_trims_only_when_the_budget_ended_the_answer() -> None:
    assert finish_text("  One. Two thr ", "length") == "One."
    assert finish_text("  One. Two thr ", "stop") == "One. Two thr"
    assert finish_text(None, "length") == ""
