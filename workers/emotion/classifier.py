"""Text → ``EmotionReading``: the bundled linear model over lexicon features, offline and sub-millisecond."""

from __future__ import annotations

from workers.components import EmotionReading
from workers.emotion.features import featurize
from workers.emotion.labels import EMOTIONS, NEUTRAL
from workers.emotion.model import SoftmaxModel

__all__ = ["LexiconEmotionClassifier"]


class LexiconEmotionClassifier:
    """Classifies one message into the seven classes; the confidence is the winning class's probability."""

    def __init__(self, model: SoftmaxModel | None = None) -> None:
        self._model = model or SoftmaxModel.bundled()

    def classify(self, text: str) -> EmotionReading:
        if not text.strip():
            # Nothing to read: say so with certainty instead of letting the priors pick "joy".
            return EmotionReading(NEUTRAL, 1.0, {e: float(e == NEUTRAL) for e in EMOTIONS})
        probabilities = self._model.probabilities(featurize(text))
        scores = {emotion: float(p) for emotion, p in zip(EMOTIONS, probabilities, strict=True)}
        label = max(scores, key=scores.__getitem__)
        return EmotionReading(label, scores[label], scores)
