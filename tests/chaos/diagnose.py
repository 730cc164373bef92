"""Why messages were lost, as far as the gateway's and the workers' logs tell.

Heuristic on purpose: it reads log lines, not the code's state, so it keeps working while the code
changes, and its labels say what the lines show rather than what the cause must be.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from tests.chaos.score import SentMessage

__all__ = ["diagnose"]

# (label, pattern): events worth counting in any process's log.
SIGNS: tuple[tuple[str, str], ...] = (
    ("worker skipped a redelivered copy as busy (claim=busy)", r"claim=busy"),
    ("Celery: unrecoverable error (the worker stops consuming)", r"Unrecoverable error"),
    ("a task raised (Celery acks it: not retried)", r"Task patchbay\.handle_message\[[^\]]*\] raised unexpected"),
    ("gateway: enqueue failed", r"enqueue failed"),
    ("telegram: update dropped by the library's default error handler", r"No error handlers are registered"),
    ("slack: listener failed", r"Failed to run listener function"),
    ("order wait gave up", r"order wait gave up"),
    ("lease lost", r"lease lost"),
    ("web chat reply subscription lost", r"web chat reply subscription lost"),
    ("Redis connection errors (lines)", r"ConnectionError|Connection refused|Error 111|Connection reset"),
)


def _lines(log_dir: Path) -> dict[str, list[str]]:
    return {path.stem: path.read_text(errors="replace").splitlines() for path in sorted(log_dir.glob("*.log"))}


def _trail(logs: dict[str, list[str]], message: SentMessage) -> list[str]:
    key = re.compile(re.escape(message.log_key) + r"(?=[\s,)]|$)")
    return [f"{name}: {line.strip()[:200]}" for name, lines in logs.items() for line in lines if key.search(line)]


def diagnose(
    log_dir: Path, lost: list[SentMessage], duplicated: list[SentMessage] | None = None, trails: int = 5
) -> list[str]:
    logs = _lines(log_dir)
    out: list[str] = []
    counts: Counter[tuple[str, str]] = Counter()
    for label, pattern in SIGNS:
        regex = re.compile(pattern)
        for name, lines in logs.items():
            hits = sum(1 for line in lines if regex.search(line))
            if hits:
                counts[(label, "gateway" if name.startswith("gateway") else "workers")] += hits
    if counts:
        out.append("signs in the logs:")
        out += [f"  {hits:5d}  {label} [{side}]" for (label, side), hits in sorted(counts.items())]
    for message in (duplicated or [])[:trails]:
        trail = _trail(logs, message)
        replied = sum(1 for line in trail if "replied key=" in line)
        out.append(f"duplicated {message.tag}: {replied} 'replied' line(s) in the logs")
        out += [f"    {line}" for line in trail[-6:]]
    if not lost:
        return out

    classes: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    for message in lost:
        trail = _trail(logs, message)
        gateway = [line for line in trail if line.startswith("gateway")]
        workers = [line for line in trail if not line.startswith("gateway")]
        if not any(" queued key=" in line for line in gateway):
            verdict = "never queued by the gateway (lost at the edge)"
        elif any("replied key=" in line for line in workers):
            verdict = "a worker logged the reply, the platform never got it"
        elif any("claim=busy" in line for line in workers):
            verdict = "queued; a copy was skipped as busy; no reply ever"
        elif not workers:
            verdict = "queued; no worker ever logged it (lost in the broker or with a killed worker)"
        else:
            verdict = "queued; a worker handled it but logged no reply"
        classes[verdict] += 1
        examples.setdefault(verdict, [])
        if len(examples[verdict]) < trails:
            examples[verdict].append(f"  {message.tag}: " + (" | ".join(trail[-4:]) or "no log line at all"))
    out.append("lost messages, by what the logs show:")
    for verdict, count in classes.most_common():
        out.append(f"  {count:5d}  {verdict}")
    for verdict, lines in examples.items():
        out.append(f" e.g. ({verdict}):")
        out += lines
    return out
