"""Retrieval recall of the base memory against the multi-query enhancement, on LoCoMo.

For each conversation every turn is stored as a memory of that conversation (channel scope), then each
question of categories 1-4 is asked as the user's message; recall@k counts the questions for which at
least one (``any``) / every (``all``) evidence turn is among the k memories recalled. Both variants
query the same store in the same run. Malformed evidence ids are normalised (``D8:6; D9:17`` is split,
``D:11:26`` -> ``D11:26``, ``D30:05`` -> ``D30:5``); ids that still name no turn of the conversation
(such as a bare ``D``) are dropped, and a question left with no evidence is skipped; both are counted.

    python bench/memory_locomo.py [--data PATH] [--json] [--cv] [--fusion weighted|rrf] [--set JSON]
                                  [--query-weights JSON] [--limit-conversations N]

``--cv`` is leave-one-conversation-out: the enhancement's re-ranking weights (``CV_GRID``) are chosen
on all conversations but one and scored on the one left out, each in turn; the held-out figures are
pooled over the folds, so they say how the method does on a conversation it was not tuned on.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
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

from patches.memory_enhancement import MemoryEnhancementConfig, MultiQueryMemory  # noqa: E402
from workers.components import Memory, Recalled, RecallQuery, Scope, Turn  # noqa: E402
from workers.memory import SqlMemory  # noqa: E402

# Where the dataset lives is the caller's to say: --data, or $PATCHBAY_LOCOMO_JSON.
DEFAULT_DATA = os.environ.get("PATCHBAY_LOCOMO_JSON")
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


@dataclass(slots=True)
class Question:
    conversation: str
    category: int
    query: RecallQuery
    evidence: set[str]


class MemoisedRecall:
    """The base memory with its recalls remembered: the cross-validation grid asks the same queries many times."""

    def __init__(self, below: Memory) -> None:
        self.below = below
        self._recalls: dict[tuple[str, str, int], list[Recalled]] = {}

    async def remember(self, turn: Turn) -> None:
        await self.below.remember(turn)

    async def history(self, conversation_key: str, limit: int) -> list[Turn]:
        return await self.below.history(conversation_key, limit)

    async def forget_user(self, user_id: str) -> int:
        return await self.below.forget_user(user_id)

    async def recall(self, query: RecallQuery) -> list[Recalled]:
        key = (query.text, query.conversation_key, query.limit)
        if key not in self._recalls:
            self._recalls[key] = await self.below.recall(query)
        return self._recalls[key]


def questions(per_conversation: list[tuple[dict[str, Any], list[Turn]]], cleaning: Cleaning) -> list[Question]:
    found: list[Question] = []
    for record, turns in per_conversation:
        known = {t.message_id for t in turns}
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
                user_id=record["conversation"]["speaker_a"],
                scope=Scope.CHANNEL,
                limit=max(KS),
            )
            found.append(Question(str(record["sample_id"]), category, query, evidence))
    return found


async def stored_memory(per_conversation: list[tuple[dict[str, Any], list[Turn]]], database_dir: Path) -> SqlMemory:
    latest = max(t.timestamp for _, turns in per_conversation for t in turns)
    # Questions are asked a day after the last session: recency is measured from then, not from today.
    now = (latest + timedelta(days=1)).timestamp()
    base = SqlMemory(f"sqlite+aiosqlite:///{database_dir / 'locomo.db'}", clock=lambda: now)
    await base.init()
    for _record, turns in per_conversation:
        for turn in turns:
            await base.remember(turn)
    await base.flush()
    return base


Tallies = dict[str, dict[int, Tally]]  # conversation ("" = all) -> category (0 = all) -> tally


async def ask(variants: dict[str, Memory], asked: list[Question]) -> dict[str, Tallies]:
    """Each question of each variant, interleaved per question so that every variant sees the same machine load."""
    tallies: dict[str, Tallies] = {name: defaultdict(lambda: defaultdict(Tally)) for name in variants}
    for question in asked:
        for name, memory in variants.items():
            t0 = time.perf_counter()
            recalled = await memory.recall(question.query)
            elapsed_ms = (time.perf_counter() - t0) * 1000
            retrieved = [r.turn.message_id for r in recalled]
            for conversation in (question.conversation, ""):
                for category in (question.category, 0):
                    tallies[name][conversation][category].add(retrieved, question.evidence, elapsed_ms)
    return tallies


async def evaluate(data: list[dict[str, Any]], config: MemoryEnhancementConfig, database_dir: Path) -> dict[str, Any]:
    per_conversation = [(record, conversation_turns(record)) for record in data]
    cleaning = Cleaning()
    asked = questions(per_conversation, cleaning)
    started = time.perf_counter()
    base = await stored_memory(per_conversation, database_dir)
    store_seconds = time.perf_counter() - started
    try:
        tallies = await ask({"base": base, "enhanced": MultiQueryMemory(base, config)}, asked)
    finally:
        await base.aclose()
    return {
        "tallies": {name: t[""] for name, t in tallies.items()},
        "cleaning": cleaning,
        "store_seconds": store_seconds,
        "turns": sum(len(t) for _, t in per_conversation),
    }


# ---------------------------------------------------------------------- leave-one-conversation-out

CV_GRID = {
    "neighbour_weight": (0.0, 0.1, 0.2, 0.3),
    "neighbour_window_s": (30.0, 60.0, 150.0),
    "author_boost": (0.0, 0.1, 0.2, 0.3),
}


def _objective(tallies: dict[int, Tally]) -> float:
    # The four recall figures weigh alike; ties go to the earlier (simpler) grid point.
    return sum(tallies[0].rates().values())


def _pooled(tallies: list[dict[int, Tally]]) -> dict[int, Tally]:
    pooled: dict[int, Tally] = defaultdict(Tally)
    for by_category in tallies:
        for category, tally in by_category.items():
            target = pooled[category]
            target.questions += tally.questions
            for key, hits in tally.hits.items():
                target.hits[key] += hits
    return pooled


async def cross_validate(
    data: list[dict[str, Any]], config: MemoryEnhancementConfig, database_dir: Path
) -> dict[str, Any]:
    """Tune the re-ranking weights on all conversations but one, score the one left out; every one in turn."""
    per_conversation = [(record, conversation_turns(record)) for record in data]
    cleaning = Cleaning()
    asked = questions(per_conversation, cleaning)
    base = await stored_memory(per_conversation, database_dir)
    try:
        memoised = MemoisedRecall(base)
        base_tallies = (await ask({"base": memoised}, asked))["base"]
        grid: list[tuple[dict[str, Any], Tallies]] = []
        for values in itertools.product(*CV_GRID.values()):
            point: dict[str, Any] = dict(zip(CV_GRID, values, strict=True))
            enhanced = MultiQueryMemory(memoised, config.model_copy(update=point))
            grid.append((point, (await ask({"enhanced": enhanced}, asked))["enhanced"]))
    finally:
        await base.aclose()
    conversations = sorted({q.conversation for q in asked})
    held_out_base: list[dict[int, Tally]] = []
    held_out_enhanced: list[dict[int, Tally]] = []
    folds: list[dict[str, Any]] = []
    for left_out in conversations:
        training = [c for c in conversations if c != left_out]
        point, tallies = max(grid, key=lambda g: _objective(_pooled([g[1][c] for c in training])))
        held_out_base.append(base_tallies[left_out])
        held_out_enhanced.append(tallies[left_out])
        folds.append({"held_out": left_out, "chosen": point, "held_out_enhanced": tallies[left_out][0].rates()})
    return {
        "folds": folds,
        "tallies": {"base": _pooled(held_out_base), "enhanced": _pooled(held_out_enhanced)},
        "cleaning": cleaning,
        "grid_size": len(grid),
    }


def print_table(tallies: dict[str, dict[int, Tally]], latency: bool) -> None:
    overall = {name: summary(by_category[0]) for name, by_category in tallies.items()}
    header = f"{'category':<14}{'n':>5}  " + "  ".join(f"{k:>13}" for k in overall["base"] if k.startswith("recall"))
    for name in ("base", "enhanced"):
        print(f"\n[{name}]\n{header}")
        for category in (*CATEGORIES, 0):
            tally = tallies[name][category]
            label = CATEGORIES.get(category, "all")
            print(f"{label:<14}{tally.questions:>5}  " + "  ".join(f"{v:>13.3f}" for v in tally.rates().values()))
        if latency:
            print(f"latency p50 {overall[name]['p50_ms']:.1f} ms, p95 {overall[name]['p95_ms']:.1f} ms")
    ratios = {k: overall["enhanced"][k] / overall["base"][k] for k in overall["base"] if overall["base"][k]}
    if not latency:
        ratios = {k: v for k, v in ratios.items() if k.startswith("recall")}
    print("\nenhanced / base:", ", ".join(f"{k} {v:.3f}" for k, v in ratios.items()))


def summary(tally: Tally) -> dict[str, float]:
    latencies = sorted(tally.latencies_ms)
    p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))] if latencies else 0.0
    return {**tally.rates(), "p50_ms": statistics.median(latencies) if latencies else 0.0, "p95_ms": p95}


def print_cleaning(cleaning: Cleaning) -> None:
    print(
        f"evidence ids normalised: {dict(cleaning.normalised) or 'none'}; dropped: {cleaning.dropped or 'none'}; "
        f"questions without usable evidence skipped: {cleaning.questions_skipped}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        required=DEFAULT_DATA is None,
        help="the LoCoMo dev set (locomo-dev.json); or $PATCHBAY_LOCOMO_JSON",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object {base, enhanced}")
    parser.add_argument(
        "--cv", action="store_true", help="leave-one-conversation-out: tune on the rest, score held out"
    )
    parser.add_argument("--fusion", choices=("weighted", "rrf"), default=MemoryEnhancementConfig().fusion)
    parser.add_argument(
        "--query-weights", type=json.loads, default=None, help='JSON, e.g. {"entities": 0.5, "topics": 0.45}'
    )
    parser.add_argument(
        "--set",
        type=json.loads,
        default=None,
        help='JSON of MemoryEnhancementConfig fields, e.g. {"neighbour_weight": 0}',
    )
    parser.add_argument("--limit-conversations", type=int, default=0, help="only the first N conversations")
    args = parser.parse_args()
    data = json.loads(args.data.read_text())
    if args.limit_conversations:
        data = data[: args.limit_conversations]
    config = MemoryEnhancementConfig(fusion=args.fusion).model_copy(update=args.set or {})
    if args.query_weights:
        config.query_weights = {**config.query_weights, **args.query_weights}
    with tempfile.TemporaryDirectory(prefix="patchbay-locomo-") as tmp:
        runner = cross_validate if args.cv else evaluate
        result = asyncio.run(runner(data, config, Path(tmp)))
    tallies = result["tallies"]
    if args.json:
        output: dict[str, Any] = {name: summary(by_category[0]) for name, by_category in tallies.items()}
        if args.cv:
            # Held-out recall only: the grid's latencies are of memoised recalls and mean nothing.
            output = {name: by_category[0].rates() for name, by_category in tallies.items()}
            output["folds"] = result["folds"]
        print(json.dumps(output))
        return
    if args.cv:
        print(
            f"LoCoMo leave-one-conversation-out: {args.data.name}, {len(data)} conversations, "
            f"{result['grid_size']} settings tried per fold, left-out figures pooled over the folds "
            "(the other memory defaults were chosen on this dev set: not a held-out estimate)"
        )
        print_cleaning(result["cleaning"])
        for fold in result["folds"]:
            rates = ", ".join(f"{k} {v:.3f}" for k, v in fold["held_out_enhanced"].items())
            print(f"left out {fold['held_out']}: chose {fold['chosen']}; left-out enhanced {rates}")
        print_table(tallies, latency=False)
        return
    print(
        f"LoCoMo memory retrieval: {args.data.name}, {len(data)} conversations, {result['turns']} turns stored "
        f"in {result['store_seconds']:.1f} s, config={config}"
    )
    print_cleaning(result["cleaning"])
    print_table(tallies, latency=True)


if __name__ == "__main__":
    main()
