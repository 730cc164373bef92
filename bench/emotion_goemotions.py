"""Emotion classifier on GoEmotions (Ekman classes): accuracy and macro-F1 against baselines, and latency.

    python bench/emotion_goemotions.py [--data PATH] [--json] [--cv]

Labels come from ``ekman-labels.txt`` beside the data file. A message with several gold labels
counts as right when the prediction is any of them. The baselines are measured in the same run:
always predicting the file's most frequent label, and a uniform random guess (mean of 20 seeds).
The bundled weights were fitted on the default dev file, so scoring that file measures training
fit; ``--cv`` adds 5-fold cross-validated figures (each message predicted by a model that never
saw it), which are the figures to expect on unseen messages.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from workers.emotion.classifier import LexiconEmotionClassifier
from workers.emotion.dataset import LabelledMessage, load_labels, load_messages
from workers.emotion.labels import EMOTIONS
from workers.emotion.manager import EmotionManager
from workers.emotion.model import bundled_document
from workers.emotion.train import cross_validated_predictions

REPO_ROOT = Path(__file__).resolve().parent.parent
# Where the dataset lives is the caller's to say: --data, or $PATCHBAY_GOEMOTIONS_TSV.
DEFAULT_DATA = os.environ.get("PATCHBAY_GOEMOTIONS_TSV")
RANDOM_SEEDS = 20


def accuracy(predictions: Sequence[str], messages: Sequence[LabelledMessage]) -> float:
    return sum(p in m.labels for p, m in zip(predictions, messages, strict=True)) / len(messages)


def macro_f1(predictions: Sequence[str], messages: Sequence[LabelledMessage], classes: Sequence[str]) -> float:
    """Mean over classes of F1, where a class is a true positive when predicted and among the gold labels."""
    scores = []
    for label in classes:
        tp = sum(p == label and label in m.labels for p, m in zip(predictions, messages, strict=True))
        fp = sum(p == label and label not in m.labels for p, m in zip(predictions, messages, strict=True))
        fn = sum(p != label and label in m.labels for p, m in zip(predictions, messages, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def predict_timed(messages: Sequence[LabelledMessage]) -> tuple[list[str], list[float]]:
    # EmotionManager.read is the production call; this reading needs no Redis, so any URL will do.
    manager = EmotionManager("redis://127.0.0.1:1/0", classifier=LexiconEmotionClassifier())
    try:
        predictions, latencies_ms = [], []
        for message in messages:
            started = time.perf_counter()
            reading = await manager.read(message.text)
            latencies_ms.append((time.perf_counter() - started) * 1000)
            predictions.append(reading.label)
        return predictions, latencies_ms
    finally:
        await manager.aclose()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        required=DEFAULT_DATA is None,
        help="the GoEmotions dev split in Ekman format (ekman-dev.tsv); or $PATCHBAY_GOEMOTIONS_TSV",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--cv", action="store_true", help="also report 5-fold cross-validated figures")
    args = parser.parse_args(argv)

    label_names = load_labels(args.data.with_name("ekman-labels.txt"))
    unknown = set(label_names) - set(EMOTIONS)
    if unknown:
        parser.error(f"labels {sorted(unknown)} are not among the classifier's classes {list(EMOTIONS)}")
    messages = load_messages(args.data, label_names)
    predictions, latencies = asyncio.run(predict_timed(messages))

    label_counts = Counter(label for m in messages for label in m.labels)
    majority = label_counts.most_common(1)[0][0]
    majority_predictions = [majority] * len(messages)
    random_accuracy, random_f1 = [], []
    for seed in range(RANDOM_SEEDS):
        guesses = [random.Random(seed * 100_003 + i).choice(label_names) for i in range(len(messages))]
        random_accuracy.append(accuracy(guesses, messages))
        random_f1.append(macro_f1(guesses, messages, label_names))

    trained_on = bundled_document().get("training_data_sha256") == hashlib.sha256(args.data.read_bytes()).hexdigest()
    result: dict[str, object] = {
        "data": str(args.data.resolve()),
        "messages": len(messages),
        "trained_on_this_file": trained_on,
        "accuracy": accuracy(predictions, messages),
        "macro_f1": macro_f1(predictions, messages, label_names),
        "majority_label": majority,
        "majority_accuracy": accuracy(majority_predictions, messages),
        "majority_macro_f1": macro_f1(majority_predictions, messages, label_names),
        "random_accuracy": statistics.fmean(random_accuracy),
        "random_macro_f1": statistics.fmean(random_f1),
        "p50_ms": percentile(latencies, 0.50),
        "p95_ms": percentile(latencies, 0.95),
        "mean_ms": statistics.fmean(latencies),
    }
    if args.cv:
        held_out = cross_validated_predictions(messages)
        result["cv_accuracy"] = accuracy(held_out, messages)
        result["cv_macro_f1"] = macro_f1(held_out, messages, label_names)

    if args.json:
        print(json.dumps(result))
        return
    majority_accuracy = float(result["majority_accuracy"])  # type: ignore[arg-type]
    print(f"{len(messages)} messages from {args.data}")
    if trained_on:
        print(
            "note: the bundled weights were fitted on this file; use --cv for 5-fold cross-validated figures (on this same file, which the features were chosen on: not held out)"
        )
    print(f"{'':24}{'accuracy':>10}{'macro-F1':>10}{'acc / majority':>16}")
    rows = [
        ("classifier", result["accuracy"], result["macro_f1"]),
        (f"majority ({majority})", result["majority_accuracy"], result["majority_macro_f1"]),
        (f"random (mean of {RANDOM_SEEDS})", result["random_accuracy"], result["random_macro_f1"]),
    ]
    if args.cv:
        rows.insert(1, ("classifier, 5-fold CV", result["cv_accuracy"], result["cv_macro_f1"]))
    for name, acc, f1 in rows:
        print(f"{name:24}{acc:>10.3f}{f1:>10.3f}{float(acc) / majority_accuracy:>15.2f}x")  # type: ignore[arg-type]
    print(f"latency per message: p50 {result['p50_ms']:.3f} ms, p95 {result['p95_ms']:.3f} ms")


if __name__ == "__main__":
    main()
