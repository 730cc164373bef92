"""Retrieval recall of the base memory against the multi-query enhancement, on LoCoMo.

For each conversation every turn is stored as a memory of that conversation (channel scope), then each
question of categories 1-4 is asked as the user's message; recall@k counts the questions for which at
least one (``any``) / every (``all``) evidence turn is among the k memories recalled. Both variants
query the same store in the same run. Malformed evidence ids are normalised (``D8:6; D9:17`` is split,
``D:11:26`` -> ``D11:26``, ``D30:05`` -> ``D30:5``); ids that still name no turn of the conversation
(such as a bare ``D``) are dropped, and a question left with no evidence is skipped; both are counted.

    python bench/memory_locomo.py [--data PATH] [--json] [--fusion weighted|rrf] [--limit-conversations N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from workers.components import Memory, RecallQuery, Scope, Turn  # noqa: E402
from workers.memory import SqlMemory  # noqa: E402
from workers.memory.enhanced import MultiQueryConfig, MultiQueryMemory  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "locomo" / "locomo-dev.json"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
KS = (5, 10)
_EVIDENCE = re.compile(r"D:?(\d+):0*(\d+)")


@dataclass(slots=True)
class Tally:
    questions: int = 0
    hits: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    latencies_ms: list[float] = field(default_factory=list)

    def add(self, retrieved: list[str], evidence: set[str], elapsed_ms: float) -> None:
        self.questions += 1
        self.latencies_ms.append(elapsed_ms)
        for k in KS:
            top = set(retrieved[:k])
            self.hits[f"recall@{k}_any"] += bool(top & evidence)
            self.hits[f"recall@{k}_all"] += evidence <= top

    def rates(self) -> dict[str, float]:
        n = max(self.questions, 1)
        return {key: self.hits[key] / n for key in (f"recall@{k}_{m}" for m in ("any", "all") for k in KS)}


@dataclass(slots=True)
class Cleaning:
    normalised: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    dropped: list[str] = field(default_factory=list)
    questions_skipped: int = 0


def normalise_evidence(raw: list[Any], known: set[str], cleaning: Cleaning) -> set[str]:
    found: set[str] = set()
    for item in raw:
        for part in re.split(r"[;,\s]+", str(item).strip()):
            if not part:
                continue
            match = _EVIDENCE.fullmatch(part)
            dia_id = f"D{match.group(1)}:{match.group(2)}" if match else None
            if dia_id is not None and dia_id in known:
                if dia_id != str(item) and dia_id not in cleaning.normalised[str(item)]:
                    cleaning.normalised[str(item)].append(dia_id)
                found.add(dia_id)
            else:
                cleaning.dropped.append(part)
    return found


def parse_session_time(value: str) -> datetime:
    return datetime.strptime(value.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def conversation_turns(record: dict[str, Any]) -> list[Turn]:
    conversation = record["conversation"]
    key = f"locomo:{record['sample_id']}"
    turns: list[Turn] = []
    sessions = sorted(
        (int(name.split("_")[1]), value)
        for name, value in conversation.items()
        if re.fullmatch(r"session_\d+", name) and isinstance(value, list)
    )
    for number, session in sessions:
        start = parse_session_time(conversation[f"session_{number}_date_time"])
        for index, item in enumerate(session):
            text = item["text"]
            if item.get("blip_caption"):
                # What an adapter stores for a shared photo: the text plus the image's caption.
                text = f"{text} [shared a photo: {item['blip_caption']}]"
            turns.append(
                Turn(
                    conversation_key=key,
                    role="user",
                    text=text,
                    author_id=item["speaker"],
                    author_name=item["speaker"],
                    user_id=item["speaker"],
                    scope=Scope.CHANNEL,
                    message_id=item["dia_id"],
                    timestamp=start + timedelta(seconds=30 * index),
                )
            )
    return turns


async def evaluate(data: list[dict[str, Any]], config: MultiQueryConfig, database_dir: Path) -> dict[str, Any]:
    latest = datetime(1970, 1, 1, tzinfo=UTC)
    per_conversation = [(record, conversation_turns(record)) for record in data]
    for _, turns in per_conversation:
        latest = max([latest, *(t.timestamp for t in turns)])
    # Questions are asked a day after the last session: recency is measured from then, not from today.
    now = (latest + timedelta(days=1)).timestamp()
    base = SqlMemory(f"sqlite+aiosqlite:///{database_dir / 'locomo.db'}", clock=lambda: now)
    await base.init()
    variants: dict[str, Memory] = {"base": base, "enhanced": MultiQueryMemory(base, config)}
    tallies = {name: defaultdict(Tally) for name in variants}
    cleaning = Cleaning()
    started = time.perf_counter()
    for _record, turns in per_conversation:
        for turn in turns:
            await base.remember(turn)
    await base.flush()
    store_seconds = time.perf_counter() - started
    for record, turns in per_conversation:
        known = {t.message_id for t in turns}
        speaker = record["conversation"]["speaker_a"]
        for qa in record["qa"]:
            category = int(qa.get("category", 0))
            if category not in CATEGORIES:
                continue
            evidence = normalise_evidence(qa.get("evidence", []), known, cleaning)
            if not evidence:
                cleaning.questions_skipped += 1
                continue
            query = RecallQuery(
                text=str(qa["question"]),
                conversation_key=turns[0].conversation_key,
                user_id=speaker,
                scope=Scope.CHANNEL,
                limit=max(KS),
            )
            for name, memory in variants.items():
                t0 = time.perf_counter()
                recalled = await memory.recall(query)
                elapsed_ms = (time.perf_counter() - t0) * 1000
                retrieved = [r.turn.message_id for r in recalled]
                tallies[name][category].add(retrieved, evidence, elapsed_ms)
                tallies[name][0].add(retrieved, evidence, elapsed_ms)  # 0 = all categories
    await base.aclose()
    return {
        "tallies": tallies,
        "cleaning": cleaning,
        "store_seconds": store_seconds,
        "turns": sum(len(t) for _, t in per_conversation),
    }


def summary(tally: Tally) -> dict[str, float]:
    latencies = sorted(tally.latencies_ms)
    p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))] if latencies else 0.0
    return {**tally.rates(), "p50_ms": statistics.median(latencies) if latencies else 0.0, "p95_ms": p95}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", action="store_true", help="print one JSON object {base, enhanced}")
    parser.add_argument("--fusion", choices=("weighted", "rrf"), default=MultiQueryConfig().fusion)
    parser.add_argument(
        "--query-weights", type=json.loads, default=None, help='JSON, e.g. {"message": 1, "topics": 0.5}'
    )
    parser.add_argument("--limit-conversations", type=int, default=0, help="only the first N conversations")
    args = parser.parse_args()
    data = json.loads(args.data.read_text())
    if args.limit_conversations:
        data = data[: args.limit_conversations]
    config = MultiQueryConfig(fusion=args.fusion)
    if args.query_weights:
        config.query_weights = {**config.query_weights, **args.query_weights}
    with tempfile.TemporaryDirectory(prefix="patchbay-locomo-") as tmp:
        result = asyncio.run(evaluate(data, config, Path(tmp)))
    tallies = result["tallies"]
    overall = {name: summary(by_category[0]) for name, by_category in tallies.items()}
    if args.json:
        print(json.dumps(overall))
        return
    cleaning: Cleaning = result["cleaning"]
    print(
        f"LoCoMo memory retrieval: {args.data.name}, {len(data)} conversations, {result['turns']} turns stored "
        f"in {result['store_seconds']:.1f} s, fusion={config.fusion}"
    )
    print(
        f"evidence ids normalised: {dict(cleaning.normalised) or 'none'}; dropped: {cleaning.dropped or 'none'}; "
        f"questions without usable evidence skipped: {cleaning.questions_skipped}"
    )
    header = f"{'category':<14}{'n':>5}  " + "  ".join(f"{k:>13}" for k in overall["base"] if k.startswith("recall"))
    for name in ("base", "enhanced"):
        print(f"\n[{name}]\n{header}")
        for category in (*CATEGORIES, 0):
            tally = tallies[name][category]
            label = CATEGORIES.get(category, "all")
            print(f"{label:<14}{tally.questions:>5}  " + "  ".join(f"{v:>13.3f}" for v in tally.rates().values()))
        print(f"latency p50 {overall[name]['p50_ms']:.1f} ms, p95 {overall[name]['p95_ms']:.1f} ms")
    print(
        "\nenhanced / base:",
        ", ".join(
            f"{k} {overall['enhanced'][k] / overall['base'][k]:.3f}"
            for k in overall["base"]
            if k.startswith("recall") and overall["base"][k]
        ),
    )


if __name__ == "__main__":
    main()
