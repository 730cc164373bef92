"""Long-term memory through the whole pipeline: something said many turns ago reaches the prompt again."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

FILLER = [
    "What's a good name for a goldfish?",
    "How long do you boil an egg?",
    "Tell me a fun fact about octopuses.",
    "What's the capital of Australia?",
    "Any tips for falling asleep faster?",
    "How many legs does a spider have?",
    "What's a haiku?",
    "Recommend a board game for two.",
    "Why is the sky blue?",
    "What rhymes with orange?",
]


def test_a_fact_from_many_turns_ago_is_recalled_into_the_prompt(make_cluster, sim_env, llm_sim) -> None:
    cluster = make_cluster({**sim_env, "PATCHBAY_HISTORY_TURNS": "6"}).start(workers=1)
    assert cluster.chat("gus", "My sister Ingrid moved to Bergen last spring.").status_code == 200
    for text in FILLER:  # ten turns later, the fact is far outside the recent history the prompt carries
        assert cluster.chat("gus", text).status_code == 200
    assert cluster.chat("gus", "Where does my sister live now?").status_code == 200

    prompt = llm_sim.stats()["recent_prompts"][-1]
    recalled = [m["content"] for m in prompt if m["content"].startswith("Quoted from earlier conversations")]
    history = [m["content"] for m in prompt if m["role"] in ("user", "assistant") and m["content"] not in recalled]
    assert not any("Bergen" in text for text in history)  # not there because of the recent history...
    (block,) = recalled
    assert "Ingrid moved to Bergen" in block  # ...but recalled from long-term memory, dated, as quoted context
    assert prompt.index(next(m for m in prompt if m["content"] == block)) == len(prompt) - 2  # just before the question
    # Remembered words are data, never instructions: nothing recalled is in the system role.
    assert not any("Bergen" in m["content"] for m in prompt if m["role"] == "system")

    # A different user asking the same question in their own DM never sees gus's memory.
    assert cluster.chat("hana", "Where does my sister live now?").status_code == 200
    other = llm_sim.stats()["recent_prompts"][-1]
    assert not any("Bergen" in m["content"] for m in other)
