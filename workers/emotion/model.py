"""A multinomial logistic regression over ``features.featurize``: fitted in numpy, stored as JSON.

Why not a bigger model: every candidate that downloads weights at run time fails offline, and on
the GoEmotions dev file this small linear model over lexicon features beats the lexicons used
alone by far (see docs/voice.md for the measured figures, all held-out by cross-validation).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from workers.emotion.features import FEATURE_NAMES
from workers.emotion.labels import EMOTIONS

__all__ = ["SoftmaxModel", "bundled_document", "fit_softmax", "soft_targets"]

_WEIGHTS_FILE = "weights.json"


@dataclass(frozen=True, slots=True)
class SoftmaxModel:
    weights: NDArray[np.float64]  # (features, classes)
    mean: NDArray[np.float64]  # feature standardisation, learnt with the weights
    scale: NDArray[np.float64]
    feature_names: tuple[str, ...]
    classes: tuple[str, ...]

    def probabilities(self, features: NDArray[np.float64]) -> NDArray[np.float64]:
        """Class probabilities for one vector (shape F) or a batch (shape N x F)."""
        logits = ((features - self.mean) / self.scale) @ self.weights
        logits = logits - logits.max(axis=-1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=-1, keepdims=True)

    def to_json(self) -> dict[str, object]:
        return {
            "feature_names": list(self.feature_names),
            "classes": list(self.classes),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
        }

    def save(self, path: Path, *, training_data_sha256: str = "") -> None:
        # The data's digest lets the evaluation warn when it is scoring the very file the weights came from.
        document = {"training_data_sha256": training_data_sha256, **self.to_json()}
        path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def from_json(cls, data: dict[str, object]) -> SoftmaxModel:
        model = cls(
            weights=np.asarray(data["weights"], dtype=np.float64),
            mean=np.asarray(data["mean"], dtype=np.float64),
            scale=np.asarray(data["scale"], dtype=np.float64),
            feature_names=tuple(data["feature_names"]),  # type: ignore[arg-type]
            classes=tuple(data["classes"]),  # type: ignore[arg-type]
        )
        # A weights file from another feature set would silently misread every message: refuse it.
        if model.feature_names != FEATURE_NAMES or model.classes != EMOTIONS:
            raise ValueError("emotion weights do not match this code's features or classes; retrain them")
        return model

    @classmethod
    def bundled(cls) -> SoftmaxModel:
        return cls.from_json(bundled_document())


def bundled_document() -> dict[str, object]:
    """The shipped weights file as JSON, including its ``training_data_sha256``."""
    text = resources.files("workers.emotion").joinpath(_WEIGHTS_FILE).read_text(encoding="utf-8")
    loaded: dict[str, object] = json.loads(text)
    return loaded


def soft_targets(label_sets: Sequence[Sequence[str]]) -> NDArray[np.float64]:
    """One row per message; a message with several gold labels shares its mass among them."""
    targets = np.zeros((len(label_sets), len(EMOTIONS)))
    for row, labels in enumerate(label_sets):
        for label in labels:
            targets[row, EMOTIONS.index(label)] = 1.0 / len(labels)
    return targets


def fit_softmax(
    features: NDArray[np.float64],
    targets: NDArray[np.float64],
    *,
    l2: float = 1e-2,
    iterations: int = 500,
    learning_rate: float = 0.5,
) -> SoftmaxModel:
    """Full-batch gradient descent with L2; deterministic, so a retrain gives the same weights."""
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    mean[0], scale[0] = 0.0, 1.0  # the bias column stays a constant 1
    scale[scale == 0] = 1.0
    standard = (features - mean) / scale
    weights = np.zeros((features.shape[1], targets.shape[1]))
    n = features.shape[0]
    for _ in range(iterations):
        logits = standard @ weights
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        gradient = standard.T @ (probs - targets) / n
        penalty = l2 * weights
        penalty[0] = 0.0  # never shrink the class priors
        weights -= learning_rate * (gradient + penalty)
    return SoftmaxModel(weights, mean, scale, FEATURE_NAMES, EMOTIONS)
