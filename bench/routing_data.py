"""RouteLLM's labelled evaluation data, as the routing-quality bench and the difficulty training read it.

bench/data/routellm/ holds a trimmed copy (its README names the source commit and the license):
for each prompt, the quality of a strong model's answer and of a weak one's. Prompts that also
occur in RouteLLM's own training data (the `*_contaminated.jsonl` lists) are dropped here, so no
figure is ever computed on them.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "routellm"
STRONG_MODEL = "gpt-4-1106-preview"
WEAK_MODEL = "Mixtral-8x7B-Instruct-v0.1"


@dataclass(frozen=True)
class Item:
    prompt: str
    weak: float
    strong: float
    group: str
    """MT-Bench's category, MMLU's subject, or `gsm8k`."""


@dataclass(frozen=True)
class LabelledSet:
    name: str
    items: tuple[Item, ...]
    quality: str
    """What a quality figure means on this set."""

    @property
    def prompts(self) -> list[str]:
        return [i.prompt for i in self.items]


def mt_bench(data: Path = DATA) -> LabelledSet:
    """80 questions less the contaminated; an answer's quality is the mean GPT-4 judge score (1-10) of its two
    turns, the model being chosen on the first turn and kept for the second (as RouteLLM scores it)."""
    dropped = _contaminated(data / "mt_bench_contaminated.jsonl")
    items = []
    for line in (data / "mt_bench.jsonl").read_text().splitlines():
        q = json.loads(line)
        if q["prompt"] in dropped:
            continue
        items.append(Item(q["prompt"], _mean(q["weak_scores"]), _mean(q["strong_scores"]), q["category"]))
    return LabelledSet("MT-Bench", tuple(items), "mean judge score (1-10)")


def gsm8k(data: Path = DATA) -> LabelledSet:
    dropped = _contaminated(data / "gsm8k_contaminated.jsonl")
    with (data / "gsm8k.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    return LabelledSet("GSM8K", tuple(_correctness(r, "gsm8k") for r in rows if r["prompt"] not in dropped), "share answered correctly")


def mmlu(data: Path = DATA) -> LabelledSet:
    dropped = _contaminated(data / "mmlu_contaminated.jsonl")
    with gzip.open(data / "mmlu.csv.gz", "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    return LabelledSet("MMLU", tuple(_correctness(r, r["subject"]) for r in rows if r["prompt"] not in dropped), "share answered correctly")


def all_sets(data: Path = DATA) -> tuple[LabelledSet, LabelledSet, LabelledSet]:
    return mt_bench(data), gsm8k(data), mmlu(data)


def _contaminated(path: Path) -> frozenset[str]:
    return frozenset(json.loads(line)["eval_prompt"] for line in _lines(path))


def _lines(path: Path) -> Iterator[str]:
    return (line for line in path.read_text().splitlines() if line.strip())


def _correctness(row: dict[str, str], group: str) -> Item:
    return Item(row["prompt"], float(row["weak_correct"] == "True"), float(row["strong_correct"] == "True"), group)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)
