"""Reading GoEmotions-format files: ``text<TAB>label ids (comma-separated)<TAB>message id``."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LabelledMessage", "load_labels", "load_messages"]


@dataclass(frozen=True, slots=True)
class LabelledMessage:
    text: str
    labels: tuple[str, ...]
    message_id: str


def load_labels(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_messages(path: Path, label_names: list[str]) -> list[LabelledMessage]:
    messages = []
    with path.open(encoding="utf-8", newline="") as handle:
        for line_number, row in enumerate(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if len(row) < 2:
                raise ValueError(f"{path}:{line_number}: expected text<TAB>labels[<TAB>id]")
            ids = [int(part) for part in row[1].split(",") if part.strip()]
            labels = tuple(label_names[i] for i in ids)
            messages.append(LabelledMessage(row[0], labels, row[2] if len(row) > 2 else str(line_number)))
    return messages
