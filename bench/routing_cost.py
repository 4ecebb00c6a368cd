"""Routing decision cost: in-process `router.decide` at every prompt size and with large images, and how
often the bounded decision agrees with full scoring (bench/agreement.py).

Run in a subprocess of its own (`python -m bench.routing_cost CONFIG REPEATS OUT_JSON [GO_FILE]`),
so that LiteLLM's import and the large bodies stay out of the bench process. With GO_FILE it
imports, builds the bodies and measures the agreement at once but starts timing only once GO_FILE
exists: the slow part overlaps the gateways' start, the timing runs while they sit idle.
"""

from __future__ import annotations

import base64
import json
import os
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from bench.agreement import AgreementResult

if TYPE_CHECKING:
    from router_plugins.routing import Availability, ContentRouter
    from router_plugins.signals import Signals

KB, MB = 1024, 1024 * 1024
# The bench's own short prompt; 2,000 characters is routing.complexity.max_chars, the longest
# prompt the complexity scorer rates.
TEXT_SIZES = {"short": 27, "1 KB": KB, "2000 chars": 2000, "10 KB": 10 * KB, "100 KB": 100 * KB, "1 MB": MB}
IMAGE_SIZES = {"10 KB": 10 * KB, "1 MB": MB, "10 MB": 10 * MB}
WINDOWED = "text 2000 chars, 1,536-token window"
"""The same prompt where the default group's window is small enough that only an exact count can tell
whether it fits (the shipped CPU model's): the dearest decision."""
DECISION_BUDGET_US = 300.0
_WORDS = ("the gateway routes each request to a model group by what the prompt holds and how long it is "
          "while the launcher starts local servers on demand and stops them when idle").split()


@dataclass(frozen=True)
class Case:
    name: str
    kind: str
    size_bytes: int
    decisions: int
    median_us: float
    p90_us: float
    reason: str
    model: str
    scored_chars: int
    """Characters of the user's words the difficulty score read (0: not run)."""
    tokens_counted: bool
    """Whether LiteLLM's token counter ran (else the size decided)."""


@dataclass(frozen=True)
class RoutingCostResult:
    cases: list[Case]
    image_flatness: float
    """Median decision time with the largest image over the smallest (1.0 = flat)."""
    agreement: AgreementResult

    def case(self, name: str) -> Case:
        return next(c for c in self.cases if c.name == name)

    @property
    def slowest(self) -> Case:
        return max(self.cases, key=lambda c: c.median_us)


def text_of_size(size: int) -> str:
    rng = random.Random(size)
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:size]


def image_body(size: int) -> dict[str, Any]:
    data = base64.b64encode(random.Random(size).randbytes(size)).decode()
    parts = [{"type": "text", "text": "What is in this picture?"},
             {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}]
    return {"model": "auto", "messages": [{"role": "user", "content": parts}]}


def text_body(size: int) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": text_of_size(size)}]}


def bodies() -> list[tuple[str, str, int, dict[str, Any]]]:
    out = [(f"text {label}", "text", size, text_body(size)) for label, size in TEXT_SIZES.items()]
    out += [(f"image {label}", "image", size, image_body(size)) for label, size in IMAGE_SIZES.items()]
    return out


def measure(config_path: str, repeats: int, go_file: Path | None = None) -> RoutingCostResult:
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from bench import agreement
    from router_config.gateway_config import load_config
    from router_plugins.access import MASTER
    from router_plugins.gateway import Gateway

    gw = Gateway(load_config(config_path))
    deciders = [(gw.router, gw.availability_for(MASTER), case) for case in bodies()]
    deciders.append((agreement.windowed_router(), lambda group: None, (WINDOWED, "text", 2000, text_body(2000))))
    agreed = agreement.measure()
    while go_file is not None and not go_file.exists():
        time.sleep(0.05)
    cases = [_time(router, availability, *case, repeats) for router, availability, case in deciders]
    images = [c for c in cases if c.kind == "image"]
    return RoutingCostResult(cases, images[-1].median_us / images[0].median_us, agreed)


def _time(router: ContentRouter, availability: Availability, name: str, kind: str, size: int, body: dict[str, Any], repeats: int) -> Case:
    from router_plugins.conversation import Shape

    decision = router.decide(body, Shape.CHAT, availability)
    for _ in range(min(20, repeats)):  # warm caches (tokenizer, scorer) before timing
        router.decide(body, Shape.CHAT, availability)
    times = []
    for _ in range(repeats):
        start = perf_counter_ns()
        router.decide(body, Shape.CHAT, availability)
        times.append((perf_counter_ns() - start) / 1000)
    times.sort()
    signals = decision.signals
    assert signals is not None
    return Case(name, kind, size, repeats, statistics.median(times), times[int(0.9 * (len(times) - 1))], decision.reason,
                decision.model, _scored_chars(body, signals), not signals.tokens_estimated)


def _scored_chars(body: dict[str, Any], signals: Signals) -> int:
    """How much of the user's words the difficulty score read (0: it didn't run)."""
    from router_plugins.conversation import Shape, read
    from router_plugins.difficulty import SCORED_CHARS

    return 0 if signals.difficulty is None else len(read(body, Shape.CHAT).user_words(SCORED_CHARS))


def main(argv: list[str]) -> int:
    config_path, repeats, out = argv[0], int(argv[1]), Path(argv[2])
    go_file = Path(argv[3]) if len(argv) > 3 else None
    out.write_text(json.dumps(asdict(measure(config_path, repeats, go_file))))
    return 0


def from_json(data: dict[str, Any]) -> RoutingCostResult:
    return RoutingCostResult([Case(**c) for c in data["cases"]], data["image_flatness"], AgreementResult(**data["agreement"]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
