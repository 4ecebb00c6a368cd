"""Routing decision cost: in-process `router.decide` for large prompts and large images.

Run in a subprocess of its own (`python -m bench.routing_cost CONFIG REPEATS OUT_JSON [GO_FILE]`),
so that LiteLLM's import and the large bodies stay out of the bench process. With GO_FILE it
imports and builds the bodies at once but starts timing only once GO_FILE exists: the slow
part overlaps the gateways' start, the timing runs while they sit idle.
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
from typing import Any

KB, MB = 1024, 1024 * 1024
TEXT_SIZES = {"1 KB": KB, "100 KB": 100 * KB, "1 MB": MB}
# Beside the sizes the targets name: the bench's own short prompt, and the longest prompt that
# still runs the complexity scorer and the exact token count (routing.complexity.max_chars).
EXTRA_TEXTS = {"short": 27, "2000 chars": 2000}
IMAGE_SIZES = {"10 KB": 10 * KB, "1 MB": MB, "10 MB": 10 * MB}
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


@dataclass(frozen=True)
class RoutingCostResult:
    cases: list[Case]
    image_flatness: float
    """Median decision time with the largest image over the smallest (1.0 = flat)."""

    def case(self, name: str) -> Case:
        return next(c for c in self.cases if c.name == name)


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


def bodies() -> list[tuple[str, str, int, dict[str, Any]]]:
    sizes = {**EXTRA_TEXTS, **TEXT_SIZES}
    out = [(f"text {label}", "text", size, {"model": "auto", "messages": [{"role": "user", "content": text_of_size(size)}]})
           for label, size in sizes.items()]
    out += [(f"image {label}", "image", size, image_body(size)) for label, size in IMAGE_SIZES.items()]
    return out


def measure(config_path: str, repeats: int, go_file: Path | None = None) -> RoutingCostResult:
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from router_config.gateway_config import load_config
    from router_plugins.access import MASTER
    from router_plugins.conversation import Shape
    from router_plugins.gateway import Gateway

    gw = Gateway(load_config(config_path))
    availability = gw.availability_for(MASTER)
    prepared = bodies()
    while go_file is not None and not go_file.exists():
        time.sleep(0.05)
    cases = []
    for name, kind, size, body in prepared:
        decision = gw.router.decide(body, Shape.CHAT, availability)
        for _ in range(min(20, repeats)):  # warm caches (tokenizer, scorer) before timing
            gw.router.decide(body, Shape.CHAT, availability)
        times = []
        for _ in range(repeats):
            start = perf_counter_ns()
            gw.router.decide(body, Shape.CHAT, availability)
            times.append((perf_counter_ns() - start) / 1000)
        times.sort()
        cases.append(Case(name, kind, size, repeats, statistics.median(times), times[int(0.9 * (len(times) - 1))],
                          decision.reason, decision.model))
    images = [c for c in cases if c.kind == "image"]
    return RoutingCostResult(cases, images[-1].median_us / images[0].median_us)


def main(argv: list[str]) -> int:
    config_path, repeats, out = argv[0], int(argv[1]), Path(argv[2])
    go_file = Path(argv[3]) if len(argv) > 3 else None
    out.write_text(json.dumps(asdict(measure(config_path, repeats, go_file))))
    return 0


def from_json(data: dict[str, Any]) -> RoutingCostResult:
    return RoutingCostResult([Case(**c) for c in data["cases"]], data["image_flatness"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
