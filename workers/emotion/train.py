"""Fit the bundled emotion weights, and measure them held-out: ``python -m workers.emotion.train``.

The weights shipped in ``weights.json`` come from this script on the GoEmotions dev file; the
cross-validated figures it prints are the ones to quote, not the figures on the training data.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from workers.emotion.dataset import LabelledMessage, load_labels, load_messages
from workers.emotion.features import featurize
from workers.emotion.labels import EMOTIONS
from workers.emotion.model import SoftmaxModel, fit_softmax, soft_targets

__all__ = ["L2", "cross_validated_predictions", "featurize_all", "fit", "main"]

L2 = 1e-2
ITERATIONS = 300


def featurize_all(messages: Sequence[LabelledMessage]) -> NDArray[np.float64]:
    return np.stack([featurize(m.text) for m in messages])


def fit(messages: Sequence[LabelledMessage]) -> SoftmaxModel:
    return fit_softmax(
        featurize_all(messages), soft_targets([m.labels for m in messages]), l2=L2, iterations=ITERATIONS
    )


def cross_validated_predictions(messages: Sequence[LabelledMessage], folds: int = 5, seed: int = 0) -> list[str]:
    """Each message predicted by a model that never saw it: the honest estimate for unseen messages."""
    features = featurize_all(messages)
    targets = soft_targets([m.labels for m in messages])
    fold_of = np.random.default_rng(seed).permutation(len(messages)) % folds
    predictions = [""] * len(messages)
    for fold in range(folds):
        train = fold_of != fold
        model = fit_softmax(features[train], targets[train], l2=L2, iterations=ITERATIONS)
        held_out = np.flatnonzero(~train)
        columns = model.probabilities(features[~train]).argmax(axis=1)
        for index, column in zip(held_out, columns, strict=True):
            predictions[index] = EMOTIONS[int(column)]
    return predictions


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="a GoEmotions Ekman-format TSV")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("weights.json"))
    args = parser.parse_args(argv)
    messages = load_messages(args.data, load_labels(args.data.with_name("ekman-labels.txt")))
    fit(messages).save(args.out, training_data_sha256=hashlib.sha256(args.data.read_bytes()).hexdigest())
    print(f"wrote {args.out} from {len(messages)} messages")


if __name__ == "__main__":
    main()
