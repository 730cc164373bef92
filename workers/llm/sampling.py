"""How the offline SmolLM2 samples, and where its answer stops: one place for ``complete`` and ``stream``.

A 135M-parameter model at temperature 0.7 without a repetition penalty loops: "hello" produced 200
tokens of "a little one-legged island... two-legged island...". The figures behind ``SAMPLING`` were
measured with ``bench/local_sampling.py`` on a fixed set of prompts (greeting, fact, personal
statement, follow-up) and are recorded in docs/llm.md, "Sampling of the offline model".

Two rules, applied only to the local model (remote providers sample their own way):

- The request's temperature is *capped* at ``SAMPLING.temperature``: a caller asking for 0 (for
  repeatable output) gets 0, but the gateway-wide default of 0.7 is too hot for this model.
- An answer cut by the token budget (``finish_reason == "length"``) is trimmed back to its last
  complete sentence (or line), so a user never sees half a sentence; an answer with no complete
  sentence at all keeps its text and gets an ellipsis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["PREVIOUS_SAMPLING", "SAMPLING", "Sampling", "ends_at_sentence", "finish_text", "trim_to_sentence"]


@dataclass(frozen=True, slots=True)
class Sampling:
    """llama.cpp sampling parameters of one generation."""

    temperature: float
    top_p: float
    top_k: int
    repeat_penalty: float
    max_tokens: int  # the local model's own budget; a request asking for more is capped to it

    def llama_kwargs(self, max_tokens: int, temperature: float) -> dict[str, Any]:
        """Keyword arguments of ``Llama.create_chat_completion`` for a request's budget and temperature."""
        return {
            "max_tokens": max(1, min(max_tokens, self.max_tokens)),
            "temperature": max(0.0, min(temperature, self.temperature)),
            "top_p": self.top_p,
            "top_k": self.top_k,
            "repeat_penalty": self.repeat_penalty,
        }


# The settings before issue 15 (temperature 0.7, llama.cpp's defaults otherwise, no penalty): the baseline
# of bench/local_sampling.py.
PREVIOUS_SAMPLING = Sampling(temperature=0.7, top_p=0.95, top_k=40, repeat_penalty=1.0, max_tokens=200)

# The choice (docs/llm.md, "Sampling of the offline model").
SAMPLING = Sampling(temperature=0.3, top_p=0.9, top_k=40, repeat_penalty=1.3, max_tokens=200)

# The end of a sentence: terminal punctuation, then closing quotes/brackets/emphasis, then whitespace or the end.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]*_`]*(?=\s|$)")
_LIST_MARKER = re.compile(r"^\s*\d+[.)]$")  # "2." at the start of a line numbers an item, it ends nothing
_TRAILING_DECORATION = re.compile(r"[\s\"'”’)\]*_`\U0001F300-\U0001FAFF\u2600-\u27BF\uFE0F]+$")
_FENCE = "```"


def ends_at_sentence(text: str) -> bool:
    """True when ``text`` ends with a finished sentence, a finished line of a list, or a closed code block."""
    stripped = text.rstrip()
    if not stripped:
        return False
    if stripped.endswith(_FENCE) and stripped.count(_FENCE) % 2 == 0:
        return True
    core = _TRAILING_DECORATION.sub("", stripped)  # "How can I help? 😊" ends at the question mark
    return bool(core) and core[-1] in ".!?…:"


def trim_to_sentence(text: str) -> str:
    """Cut ``text`` back to its last complete sentence or line; used when the token budget ran out."""
    stripped = text.rstrip()
    if ends_at_sentence(stripped):
        return stripped
    cut = 0
    for match in _SENTENCE_END.finditer(stripped):
        line_start = stripped.rfind("\n", 0, match.start()) + 1
        if _LIST_MARKER.match(stripped[line_start : match.end()]):
            continue
        cut = match.end()
    last_line_end = stripped.rfind("\n")
    if last_line_end > cut and stripped[:last_line_end].strip():
        cut = last_line_end
    if cut == 0:
        return stripped + "…"
    trimmed = stripped[:cut].rstrip()
    if trimmed.count(_FENCE) % 2 == 1:
        trimmed += f"\n{_FENCE}"  # the cut fell inside a code block: close it so it still renders
    return trimmed


def finish_text(text: str | None, finish_reason: str | None) -> str:
    """The answer as handed on: stripped, and cut back to its last sentence if the token budget ended it."""
    answer = (text or "").strip()
    return trim_to_sentence(answer) if finish_reason == "length" and answer else answer
