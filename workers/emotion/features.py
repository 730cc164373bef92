"""Text → a small dense feature vector: VADER valence and hand-written cue lists.

The vector is deliberately low-dimensional (a few dozen named features, no bag of words) so a
linear model fitted on a couple of thousand labelled messages cannot memorise them: every weight
belongs to a feature a person can read. Cue lists name the GoEmotions sub-emotions folded into
each Ekman class (gratitude and amusement count as joy, curiosity and confusion as surprise...).
The NRC emotion lexicon was measured too and left out: it added 0.3 points of held-out accuracy
and nothing to macro-F1, for a research-only licence and the TextBlob/NLTK dependencies.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Final

import numpy as np
from numpy.typing import NDArray
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

__all__ = ["FEATURE_NAMES", "featurize", "tokens"]

# Words and stems (a trailing "*" matches any ending), grouped by the sub-emotion they signal.
CUES: Final[dict[str, tuple[str, ...]]] = {
    "gratitude": ("thank*", "thx", "ty", "appreciat*", "grateful"),
    "admiration": (
        "love*",
        "great",
        "awesome",
        "amazing",
        "beautiful",
        "best",
        "nice",
        "cool",
        "wonderful",
        "fantastic",
        "incredible",
        "brilliant",
        "perfect",
        "impressive",
        "cute",
        "adorable",
    ),
    "amusement": ("lol*", "lmao*", "haha*", "hehe*", "funny", "hilarious", "rofl", "😂", "🤣", "😆"),
    "approval": ("agree*", "yes", "yeah", "yep", "true", "exactly", "definitely", "absolutely", "right"),
    "optimism": ("hope*", "wish*", "luck", "congrat*", "welcome", "excited", "happy", "glad", "proud", "enjoy*"),
    "annoyance": (
        "hate*",
        "stupid",
        "idiot*",
        "annoy*",
        "damn*",
        "fuck*",
        "wtf",
        "ugh",
        "shut",
        "dumb",
        "ridiculous",
        "angry",
        "mad",
        "pissed",
        "screw*",
        "moron*",
    ),
    "disapproval": ("not", "don't", "dont", "no", "wrong", "never", "shouldn't", "isn't", "doesn't", "can't"),
    "disgust": (
        "gross",
        "disgust*",
        "eww*",
        "ew",
        "nasty",
        "vile",
        "creepy",
        "pathetic",
        "sick*",
        "yuck",
        "repuls*",
        "horrible",
        "awful",
    ),
    "fear": (
        "scared",
        "scary",
        "afraid",
        "terrif*",
        "fear*",
        "nervous",
        "anxious",
        "anxiety",
        "worr*",
        "panic*",
        "frighten*",
        "creeped",
    ),
    "sadness": (
        "sad*",
        "sorry",
        "unfortunate*",
        "miss*",
        "cry*",
        "cried",
        "depress*",
        "disappoint*",
        "died",
        "rip",
        "shame",
        "embarrass*",
        "regret*",
        "lonely",
        "hurt*",
        "heartbreak*",
        "loss",
        "lost",
        "😢",
        "😭",
    ),
    "surprise": ("wow", "omg", "whoa", "woah", "surpris*", "shock*", "unexpected", "holy", "wait", "😮", "😲"),
    "curiosity": ("why", "how", "what", "who", "where", "wonder*", "curious", "anyone", "any", "question"),
    "confusion": ("confus*", "huh", "understand", "idk", "weird", "strange", "odd", "mean"),
    "realization": ("realiz*", "realis*", "oh", "ah", "til", "noticed"),
}

_TOKEN = re.compile(r"[a-z][a-z']*|[\U0001F300-\U0001FAFF\u2600-\u27BF]")
_WH_START = re.compile(r"^\s*(why|how|what|who|where|when|which|is|are|do|does|did|can|could|would|should)\b", re.I)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


@lru_cache(maxsize=1)
def _vader() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


@lru_cache(maxsize=1)
def _cue_matchers() -> tuple[tuple[str, frozenset[str], tuple[str, ...]], ...]:
    built = []
    for group, words in CUES.items():
        exact = frozenset(w for w in words if not w.endswith("*"))
        prefixes = tuple(w[:-1] for w in words if w.endswith("*"))
        built.append((group, exact, prefixes))
    return tuple(built)


FEATURE_NAMES: Final[tuple[str, ...]] = (
    "bias",
    "vader_pos",
    "vader_neg",
    "vader_neu",
    "vader_compound",
    "vader_compound_sq",
    *(f"cue_{g}" for g in CUES),
    "question_mark",
    "wh_start",
    "exclamation",
    "log_length",
    "shouting",
    "no_sentiment",
)


def featurize(text: str) -> NDArray[np.float64]:
    """The feature vector of one message, in ``FEATURE_NAMES`` order."""
    words = tokens(text)
    n_words = max(len(words), 1)
    valence = _vader().polarity_scores(text)
    cue_counts = []
    for _group, exact, prefixes in _cue_matchers():
        hits = sum(1 for w in words if w in exact or (prefixes and w.startswith(prefixes)))
        cue_counts.append(math.log1p(hits))
    letters = [c for c in text if c.isalpha()]
    shouting = 1.0 if len(letters) >= 4 and sum(c.isupper() for c in letters) / len(letters) > 0.6 else 0.0
    vector = [
        1.0,
        valence["pos"],
        valence["neg"],
        valence["neu"],
        valence["compound"],
        valence["compound"] ** 2,
        *cue_counts,
        1.0 if "?" in text else 0.0,
        1.0 if _WH_START.match(text) else 0.0,
        math.log1p(text.count("!")),
        math.log1p(n_words) / 4.0,
        shouting,
        1.0 if valence["compound"] == 0.0 else 0.0,
    ]
    return np.asarray(vector, dtype=np.float64)
