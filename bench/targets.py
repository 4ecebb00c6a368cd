"""The issue's targets, each judged met or not from the figures of one run."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.affinity import COST_MAX_MS as AFFINITY_COST_MAX_MS
from bench.ledger_cost import CPU_MAX_MS as LEDGER_CPU_MAX_MS

if TYPE_CHECKING:
    from bench.suite import SuiteResult

IMAGE_FLATNESS_MAX = 1.5
"""'Flat in image size': the 10 MB image's median decision within 1.5x of the 10 KB one's."""
OVERHEAD_SHARE_MAX = 0.40
"""(x-a)/(b-a): llm-router's overhead over a direct call, as a share of stock LiteLLM's (issue 15)."""


@dataclass(frozen=True)
class TargetResult:
    name: str
    requirement: str
    figure: float | None
    unit: str
    met: bool | None
    """None: not measured in this run (see note)."""
    note: str = ""


def _at_most(name: str, requirement: str, figure: float | None, limit: float, unit: str, note: str = "") -> TargetResult:
    met = None if figure is None or math.isnan(figure) else figure <= limit
    return TargetResult(name, requirement, _round(figure), unit, met, note)


def _at_least(name: str, requirement: str, figure: float | None, limit: float, unit: str, note: str = "") -> TargetResult:
    met = None if figure is None or math.isnan(figure) else figure >= limit
    return TargetResult(name, requirement, _round(figure), unit, met, note)


def _round(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 3)


def evaluate(r: SuiteResult) -> list[TargetResult]:
    out: list[TargetResult] = []
    for o in r.latency.overheads:
        what = {"c": "explicit local model", "d": "auto"}.get(o.key)
        if what is None:
            continue  # (f) is a reference point, not a target
        out.append(_at_most(f"plugins_p50_{o.key}", f"({o.key})-(b) at p50 <= 0.5 ms, non-streaming ({what})", o.minus_stock_p50_ms, 0.5, "ms"))
        out.append(_at_most(f"plugins_p99_{o.key}", f"({o.key})-(b) at p99 <= 1 ms, non-streaming ({what})", o.minus_stock_p99_ms, 1.0, "ms"))
    for o in r.latency.overheads:
        if o.key in ("c", "d"):
            for at, share in (("p50", o.share_of_stock_overhead_p50), ("p99", o.share_of_stock_overhead_p99)):
                out.append(_at_most(f"overhead_share_{at}_{o.key}", f"({o.key}-a)/(b-a) at {at} <= {OVERHEAD_SHARE_MAX} "
                                    "(llm-router's overhead over a direct call vs stock's)", share, OVERHEAD_SHARE_MAX, "x"))
    stock16 = r.throughput.cell("b", 16)
    for key, what, least in (("c", "llm-router (c), 1 worker", 2.5), ("e", "llm-router (e), --workers 2 (the default on 2+ CPUs)", 1.5)):
        router16 = r.throughput.cell(key, 16)
        if router16 is None:
            continue
        ratio = router16.rps / stock16.rps if stock16 and stock16.rps else None
        out.append(_at_least(f"throughput_16_{key}", f"{what}: req/s at 16 clients >= {least}x stock LiteLLM's", ratio, least, "x"))
    for cold in r.cold_start:
        out.append(_at_most(f"launcher_cold_start_{cold.group}", f"launcher overhead on a cold start <= 300 ms, same start ({cold.engine})",
                            cold.same_start_overhead_median_ms, 300.0, "ms", cold.skipped or ""))
    cost = r.routing_cost
    out.append(_at_most("routing_every_size", f"`auto` decision <= 0.3 ms (median) at every prompt size, 0 to 1 MB, and with images "
                        f"(slowest: {cost.slowest.name})", cost.slowest.median_us / 1000, 0.3, "ms"))
    agreed = cost.agreement
    out.append(_at_least("routing_reason_agreement", f"the decision's reason agrees with full scoring on >= 99% of the corpus "
                         f"({agreed.conversations:,} conversations)", agreed.reason_share, 0.99, "share"))
    out.append(_at_least("routing_difficulty_agreement", f"its difficulty score falls on the same side of the threshold on >= 95% of "
                         f"those it decides ({agreed.scored:,})", agreed.side_share, 0.95, "share"))
    out.append(_at_most("routing_image_flat", f"image size doesn't change the decision cost (10 MB / 10 KB median <= {IMAGE_FLATNESS_MAX})",
                        cost.image_flatness, IMAGE_FLATNESS_MAX, "x"))
    aff = r.affinity
    out.append(_at_most("affinity_cost", f"conversation affinity adds <= {AFFINITY_COST_MAX_MS} ms to a decision (median on - off, "
                        f"{aff.conversations} agent conversations)", aff.median_diff_ms, AFFINITY_COST_MAX_MS, "ms"))
    out.append(_at_most("affinity_no_downward_switch", "with affinity on, no agent conversation switches down from complex or vision",
                        float(aff.on.downward_switches), 0.0, "switches"))
    for cell in r.ledger.cells:
        out.append(_at_most(f"ledger_cpu_{cell.concurrency}", f"writing the spend ledger adds <= {LEDGER_CPU_MAX_MS} ms of CPU per request "
                            f"({cell.concurrency} callback(s) at a time)", cell.cpu_ms_per_request, LEDGER_CPU_MAX_MS, "ms"))
    for m in r.memory:
        if m.key == "router":
            out.append(_at_most("memory_growth", f"gateway RSS after {m.after.requests:,} requests within 10% of idle",
                                m.growth_pct, 10.0, "%"))
    for s in r.stampede:
        out.append(TargetResult(f"stampede_processes_{_slug(s.gateway)}", f"stampede ({s.gateway}): exactly 1 server process started",
                                s.processes_started, "processes", s.processes_started == 1))
        out.append(TargetResult(f"stampede_answered_{_slug(s.gateway)}", f"stampede ({s.gateway}): all {s.requests} requests answered",
                                s.answered, "requests", s.answered == s.requests))
    return out


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text)
