"""`llm-router calibrate --share S`: the difficulty threshold that sends about S of `auto` traffic to routing.complex.

The scores come from one of two places, and never any prompt text is kept:
- the gateway's own histogram of the difficulty scores it routed (`llm_router_difficulty`, every
  worker of every gateway on this state folder, since each started), read from the Prometheus
  files in the state folder;
- a file of prompts (`--prompts FILE`, JSON lines): each line a JSON string, an object with a
  `prompt`, or a whole chat, Responses or Messages request body, read as `auto` reads it.

Only the requests the score decides count: text (no image) with words of the user's own, within
the length rule. `--write` puts the threshold into the config's `routing.difficulty` and checks the
file still loads.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from router_config.gateway_config import GatewayConfig, load_config
from router_config.problems import ConfigError

METRIC = "llm_router_difficulty"


class CalibrationError(Exception):
    """What went wrong, in one line a person can act on."""


@dataclass(frozen=True)
class Calibration:
    threshold: float
    share: float
    """The share of the scores at or above the threshold."""
    scores: int
    source: str


def threshold_for_share(scores: Sequence[float], share: float) -> float:
    """The threshold that sends round(share * n) of these scores up: halfway between the last one sent and the next."""
    ranked = sorted(scores, reverse=True)
    sent = round(share * len(ranked))
    if sent >= len(ranked):
        return 0.0
    if sent == 0:
        return min(1.0, ranked[0] + 1e-4)
    return round((ranked[sent - 1] + ranked[sent]) / 2, 4)


def threshold_from_histogram(buckets: Sequence[tuple[float, float]], share: float) -> tuple[float, float]:
    """(threshold, observations) from a cumulative histogram [(upper bound, count), ...], interpolated within a bucket."""
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        raise CalibrationError("the histogram holds no scores yet")
    wanted_below = (1.0 - share) * total
    lower_bound, below = 0.0, 0.0
    for upper, cumulative in buckets:
        if cumulative >= wanted_below and cumulative > below:
            upper = min(upper, 1.0)
            return round(lower_bound + (upper - lower_bound) * (wanted_below - below) / (cumulative - below), 4), total
        lower_bound, below = min(upper, 1.0), cumulative
    return 1.0, total


def from_prompts(config: GatewayConfig, path: Path, share: float) -> Calibration:
    scores = list(_scores_of(config, _read_lines(path)))
    if not scores:
        raise CalibrationError(f"{path}: no prompt in it is one the difficulty score decides (text, within the length rule)")
    threshold = threshold_for_share(scores, share)
    return Calibration(threshold, sum(s >= threshold for s in scores) / len(scores), len(scores), str(path))


def from_histogram(config: GatewayConfig, share: float) -> Calibration:
    folder = config.resolve_path(config.settings.state_dir) / "metrics"
    if not config.settings.metrics:
        raise CalibrationError("llm_router.metrics is false, so no scores are recorded; pass --prompts FILE")
    buckets = _histogram(folder)
    if not buckets or buckets[-1][1] == 0:
        raise CalibrationError(f"no `auto` request has been scored by a gateway on {folder.parent} since it started; "
                               "send some traffic, or pass --prompts FILE")
    threshold, total = threshold_from_histogram(buckets, share)
    return Calibration(threshold, share, int(total), f"the gateway's histogram ({METRIC}) in {folder}")


def config_line(threshold: float) -> str:
    return f"routing:\n  difficulty: {{threshold: {threshold}}}"


def write(config: GatewayConfig, threshold: float) -> None:
    """Set routing.difficulty to this threshold in the config file, keeping everything else as it is."""
    path = config.path
    before = path.read_text()
    after = _with_threshold(before, threshold)
    path.write_text(after)
    try:
        load_config(path)
    except ConfigError:
        path.write_text(before)
        raise


def _with_threshold(text: str, threshold: float) -> str:
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if re.match(r"routing:\s*(#.*)?$", line)), None)
    if start is None:
        raise CalibrationError("the config has no `routing:` section to put the threshold in")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].strip() and not lines[i][0].isspace()), len(lines))
    indent = next((re.match(r"\s+", lines[i]).group(0) for i in range(start + 1, end) if lines[i].strip() and not lines[i].lstrip().startswith("#")), "  ")  # type: ignore[union-attr]
    new = f"{indent}difficulty: {{threshold: {threshold}}}   # llm-router calibrate\n"
    body = lines[start + 1:end]
    at = next((i for i, line in enumerate(body) if re.match(rf"{indent}difficulty\s*:", line)), None)
    if at is None:
        body.append(new)
    else:
        stop = next((j for j in range(at + 1, len(body)) if not body[j].strip() or len(body[j]) - len(body[j].lstrip()) <= len(indent)),
                    len(body))
        body[at:stop] = [new]
    return "".join(lines[:start + 1] + body + lines[end:])


def _read_lines(path: Path) -> Iterable[object]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise CalibrationError(f"{path}: {exc.strerror}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError:
            raise CalibrationError(f"{path}:{number}: not JSON; write one JSON string, {{\"prompt\": ...}} or request body a line") from None


def _scores_of(config: GatewayConfig, items: Iterable[object]) -> Iterable[float]:
    from router_plugins.conversation import Shape, guess_shape, read
    from router_plugins.routing import ContentRouter

    reader = ContentRouter(config).reader
    if reader is None:
        raise CalibrationError("the config has no `routing:` section, so `auto` isn't routed by difficulty")
    for item in items:
        if isinstance(item, str):
            body: dict = {"messages": [{"role": "user", "content": item}]}
        elif isinstance(item, dict) and isinstance(item.get("prompt"), str):
            body = {"messages": [{"role": "user", "content": item["prompt"]}]}
        elif isinstance(item, dict):
            body = item
        else:
            continue
        conversation = read(body, guess_shape(body) if body is item else Shape.CHAT)
        score = reader.difficulty(conversation) if conversation.user_word_turns else None
        if score is not None:
            yield score


def _histogram(folder: Path) -> list[tuple[float, float]]:
    """The difficulty histogram summed over every process's files under `folder` (cumulative counts by upper bound)."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    counts: dict[float, float] = {}
    for gateway in sorted(p for p in folder.glob("*") if p.is_dir()):
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(gateway))
        for metric in registry.collect():
            if metric.name != METRIC:
                continue
            for sample in metric.samples:
                if sample.name == f"{METRIC}_bucket":
                    bound = math.inf if sample.labels["le"] == "+Inf" else float(sample.labels["le"])
                    counts[bound] = counts.get(bound, 0.0) + sample.value
    return sorted(counts.items())
