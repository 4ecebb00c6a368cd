"""Conversation affinity over multi-turn agent conversations (bench/agent_corpus.py): tier switches, and what it costs.

Every turn of every conversation is routed in-process, in order, by two gateways built from the
bench's llm-router config: one as configured (affinity on) and one with `routing.affinity: false`.
Each decision is made as a gateway makes it (router_plugins/hooks.py): `router.decide` with the
gateway's table of conversation tiers and the request's headers, then `remember` of the tier.

A tier switch is a turn routed at another tier than the turn before it in its conversation; a
downward switch goes from complex or vision to a lower tier. Timing: after one untimed pass, each
pass routes the whole corpus again with fresh tables, each turn decided by both gateways back to
back (which goes first alternates), so load on the machine falls on both alike.

Standalone: `python -m bench.affinity [--quick] [--output FILE]` writes its JSON (default
bench/results/affinity-<date>.json) and, with the default output, its section of BENCHMARKS.md.
In the suite it runs in a subprocess of its own (`python -m bench.affinity --config CONFIG
--passes N --json OUT [--go FILE]`), like bench/routing_cost.py: with GO_FILE it imports, builds
the corpus and makes the untimed pass at once, but starts timing only once GO_FILE exists.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

import yaml

from bench import agent_corpus

if TYPE_CHECKING:
    from router_plugins.gateway import Gateway
    from router_plugins.routing import RoutingDecision

COST_MAX_MS = 0.05
"""Issue 22: affinity adds no more than 0.05 ms to a decision."""
_RANK = {"default": 0, "complex": 1, "vision": 2}


@dataclass(frozen=True)
class ModeFigures:
    affinity: bool
    switches: int
    switches_per_conversation: float
    downward_switches: int
    conversations_switching_down: int
    share_switching_down: float
    upward_switches: int
    by_affinity: int
    """Turns whose reason was `affinity` (the remembered tier decided)."""
    tiers: dict[str, int]
    """Turns routed at each tier."""
    median_ms: float
    p99_ms: float
    decisions: int
    """Timed decisions."""


@dataclass(frozen=True)
class KindFigures:
    kind: str
    conversations: int
    turns: int
    switches_per_conversation_on: float
    switches_per_conversation_off: float
    switching_down_on: int
    switching_down_off: int


@dataclass(frozen=True)
class AffinityResult:
    conversations: int
    turns: int
    shapes: dict[str, int]
    key_sources: dict[str, int]
    escalations: dict[str, int]
    passes: int
    on: ModeFigures
    off: ModeFigures
    kinds: list[KindFigures]
    median_diff_ms: float
    """Median decision with affinity on minus off."""
    p99_diff_ms: float
    paired_median_diff_ms: float
    """The median of each turn's on-minus-off time."""
    simple_raised_on: int
    """`stays simple` conversations that affinity on routed above default in some turn (another conversation's tier: 0)."""


def gateways(config_path: str | Path) -> tuple[Gateway, Gateway]:
    """Two in-process gateways for the config: affinity as configured (on), and `routing.affinity: false`.

    Both route each turn by LiteLLM's keyword tiers, the difficulty score held off: the corpus's kinds
    are defined by those tiers (bench/agent_corpus.py), and what is measured is switching, not which
    turns are hard."""
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from router_config.gateway_config import load_config
    from router_plugins.gateway import Gateway

    path = Path(config_path)
    config = yaml.safe_load(path.read_text())
    config["routing"]["complexity"] = {**config["routing"].get("complexity", {}), "tiers": ["COMPLEX", "REASONING"]}
    config["routing"]["difficulty"] = {"threshold": 1.0}
    found = []
    for mode, affinity in (("on", config["routing"].get("affinity", True)), ("off", False)):
        # Beside the original: relative paths in it (launch specs, state) resolve the same.
        variant = path.with_name(f"{path.stem}.affinity-{mode}{path.suffix}")
        variant.write_text(yaml.safe_dump({**config, "routing": {**config["routing"], "affinity": affinity}}, sort_keys=False))
        found.append(Gateway(load_config(variant)))
    on_gw, off_gw = found
    assert on_gw.config.routing and on_gw.config.routing.affinity.enabled, "the bench config must have affinity on"
    return on_gw, off_gw


def forget(gw: Gateway) -> None:
    """A fresh table of conversation tiers: what a newly started gateway knows."""
    from router_plugins.affinity import ConversationTiers

    assert gw.config.routing is not None
    gw.conversations = ConversationTiers(gw.config.routing.affinity)


def decide(gw: Gateway, body: dict[str, Any], shape: Any, headers: dict[str, str]) -> RoutingDecision:
    """One turn, as router_plugins/hooks.py routes it: decide, then remember the tier routing chose."""
    from router_plugins.access import MASTER

    decision = gw.router.decide(body, shape, gw.availability_for(MASTER), gw.conversations, headers)
    if decision.conversation is not None and decision.tier is not None:
        gw.conversations.remember(decision.conversation.digest, decision.tier)
    return decision


def route(gw: Gateway, conversations: list[agent_corpus.AgentConversation]) -> list[list[RoutingDecision]]:
    """Every turn of every conversation, in order, with a fresh table: the decisions per conversation."""
    from router_plugins.conversation import Shape

    forget(gw)
    return [[decide(gw, body, Shape(c.shape), c.headers) for body in c.turns] for c in conversations]


def switches(tiers: list[str]) -> tuple[int, int, int]:
    """(switches, downward, upward) between consecutive turns."""
    down = sum(_RANK[b] < _RANK[a] for a, b in zip(tiers, tiers[1:]))
    up = sum(_RANK[b] > _RANK[a] for a, b in zip(tiers, tiers[1:]))
    return down + up, down, up


def measure(config_path: str | Path, passes: int, go_file: Path | None = None) -> AffinityResult:
    from router_plugins.conversation import Shape

    corpus = agent_corpus.conversations()
    on_gw, off_gw = gateways(config_path)
    # The untimed pass: the figures (the same in every pass, each starting from a fresh table) and warm caches.
    decided = {True: route(on_gw, corpus), False: route(off_gw, corpus)}
    while go_file is not None and not go_file.exists():
        time.sleep(0.05)
    times: dict[bool, list[float]] = {True: [], False: []}
    paired: list[float] = []
    turns = [(Shape(c.shape), body, c.headers) for c in corpus for body in c.turns]
    for p in range(passes):
        forget(on_gw)
        forget(off_gw)
        for i, (shape, body, headers) in enumerate(turns):
            took = {}
            for on in ((True, False) if (i + p) % 2 == 0 else (False, True)):
                gw = on_gw if on else off_gw
                start = perf_counter_ns()
                decide(gw, body, shape, headers)
                took[on] = (perf_counter_ns() - start) / 1e6
                times[on].append(took[on])
            paired.append(took[True] - took[False])
    on, off = (_figures(on, decided[on], corpus, times[on]) for on in (True, False))
    kinds = []
    for kind in agent_corpus.KINDS:
        idx = [i for i, c in enumerate(corpus) if c.kind == kind]
        counted = {on: [switches([d.tier or "default" for d in decided[on][i]]) for i in idx] for on in (True, False)}
        kinds.append(KindFigures(kind, len(idx), sum(len(corpus[i].turns) for i in idx),
                                 *(sum(s[0] for s in counted[on]) / len(idx) if idx else 0.0 for on in (True, False)),
                                 *(sum(s[1] > 0 for s in counted[on]) for on in (True, False))))
    simple_raised = sum(any(d.tier != "default" for d in decided[True][i]) for i, c in enumerate(corpus) if c.kind == "stays simple")
    return AffinityResult(
        conversations=len(corpus), turns=len(turns), shapes=dict(Counter(c.shape for c in corpus)),
        key_sources=dict(Counter(c.key_from for c in corpus).most_common()),
        escalations=dict(Counter(c.escalation for c in corpus if c.escalation)), passes=passes, on=on, off=off, kinds=kinds,
        median_diff_ms=on.median_ms - off.median_ms, p99_diff_ms=on.p99_ms - off.p99_ms,
        paired_median_diff_ms=statistics.median(paired) if paired else float("nan"), simple_raised_on=simple_raised)


def _figures(on: bool, decided: list[list[RoutingDecision]], corpus: list[agent_corpus.AgentConversation], times: list[float]) -> ModeFigures:
    counted = [switches([d.tier or "default" for d in decisions]) for decisions in decided]
    total, down, up = (sum(s[i] for s in counted) for i in range(3))
    switching_down = sum(s[1] > 0 for s in counted)
    tiers = Counter(d.tier or "default" for decisions in decided for d in decisions)
    times = sorted(times)
    return ModeFigures(on, total, total / len(corpus), down, switching_down, switching_down / len(corpus), up,
                       sum(d.reason == "affinity" for decisions in decided for d in decisions),
                       {t: tiers.get(t, 0) for t in _RANK}, statistics.median(times) if times else float("nan"),
                       times[int(0.99 * (len(times) - 1))] if times else float("nan"), len(times))


def from_json(data: dict[str, Any]) -> AffinityResult:
    fields = {**data, "on": ModeFigures(**data["on"]), "off": ModeFigures(**data["off"]),
              "kinds": [KindFigures(**k) for k in data["kinds"]]}
    return AffinityResult(**fields)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.affinity", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer timed passes over the corpus")
    parser.add_argument("--passes", type=int, default=None, help="timed passes over the corpus (default: the mode's)")
    parser.add_argument("--config", type=Path, default=None, help="an llm-router config (default: the bench's, written to a temp folder)")
    parser.add_argument("--json", type=Path, default=None, help="write only this JSON (the suite's subprocess)")
    parser.add_argument("--go", type=Path, default=None, help="start timing once this file exists")
    parser.add_argument("--output", type=Path, default=None,
                        help="write the JSON here and leave BENCHMARKS.md alone (default: bench/results/affinity-<date>.json and "
                             "this section of BENCHMARKS.md)")
    args = parser.parse_args(argv)
    from bench.settings import FULL, QUICK

    passes = args.passes if args.passes is not None else (QUICK if args.quick else FULL).affinity_passes
    scratch = None if args.config else Path(tempfile.mkdtemp(prefix="llm-router-affinity-"))
    try:
        result = measure(args.config or _bench_config(scratch), passes, args.go)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(result)))
        return 0
    from bench import report
    from bench.machine import machine
    from bench.processes import REPO

    now = dt.datetime.now().astimezone()
    m = machine()
    out = args.output or REPO / "bench" / "results" / f"affinity-{now.date().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"date": now.date().isoformat(), "started_at": now.isoformat(timespec="seconds"),
                               "mode": "quick" if args.quick else "full", "machine": asdict(m), **report._finite(asdict(result))}, indent=2) + "\n")
    provenance = (f"`python -m bench.affinity`{' --quick' if args.quick else ''}, {now.isoformat(timespec='seconds')}, "
                  f"{m.cpu_count} CPUs ({m.cpu_model}); raw figures: `{out.relative_to(REPO) if out.is_relative_to(REPO) else out}`")
    print(report.affinity_terminal(result))
    if args.output is None:
        report.write_affinity_section(result, REPO / "BENCHMARKS.md", provenance)
        print(f"\nwrote {out} and its section of BENCHMARKS.md")
    else:
        print(f"\nwrote {out}")
    return 0


def _bench_config(directory: Path) -> Path:
    """The suite's llm-router config (nothing is started: the decision only reads the launch specs)."""
    from bench import configs
    from tests.support.gateway import free_port

    setup, _ = configs.write_router(directory, free_port(), "affinity", None)
    return setup.config


if __name__ == "__main__":
    sys.exit(main())
