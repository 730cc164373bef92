"""Word-level text helpers shared by the lexical index, the query builder and the hashed embedder."""

from __future__ import annotations

import re

__all__ = ["STOPWORDS", "content_words", "entities", "normalised_text", "words"]

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9']*")

# Function words and chat filler: they match almost every turn, so they only add noise to a lexical query.
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are aren't as at be because been before being below
    between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each
    few for from further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself
    him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most
    mustn't my myself no nor not of off on once only or other ought our ours ourselves out over own same shan't
    she she'd she'll she's should shouldn't so some such than that that's the their theirs them themselves then
    there there's these they they'd they'll they're they've this those through to too under until up very was
    wasn't we we'd we'll we're we've were weren't what what's when when's where where's which while who who's
    whom why why's will with won't would wouldn't you you'd you'll you're you've your yours yourself yourselves
    also just like really yeah yes oh ok okay hey hi hello thanks thank well so much many lot lots get got
    go going gone know think thought want wanted would say said tell told one two thing things something
    anything everything kind sort way ever still even us
    """.split()
)


def words(text: str) -> list[str]:
    """Lower-cased word tokens; apostrophes kept inside words, stripped at the end ("dogs'" -> "dogs")."""
    return [w.lower().rstrip("'") for w in _WORD.findall(text)]


def content_words(text: str, min_length: int = 3) -> list[str]:
    """Words that carry topic: no stop-words, no very short tokens (numbers always kept), order and repeats kept."""
    return [w for w in words(text) if w not in STOPWORDS and (len(w) >= min_length or w.isdigit())]


def entities(text: str, limit: int = 8) -> list[str]:
    """Likely names: capitalised or digit-bearing tokens that are not stop-words, in order, without repeats.

    The sentence-initial word is kept only when it is not a stop-word: "Caroline went..." names someone,
    "What did..." does not. Good enough for chat text; it needs no model.
    """
    found: list[str] = []
    for token in _WORD.findall(text):
        word = token.rstrip("'")
        if word.endswith("'s"):
            word = word[:-2]
        lower = word.lower()
        if lower in STOPWORDS or len(word) < 2:
            continue
        if (word[0].isupper() or any(ch.isdigit() for ch in word)) and lower not in found:
            found.append(lower)
            if len(found) >= limit:
                break
    return found


def normalised_text(text: str) -> str:
    """The words of ``text``, lower-cased and single-spaced: two turns with equal normalised text say the same thing."""
    return " ".join(words(text))
